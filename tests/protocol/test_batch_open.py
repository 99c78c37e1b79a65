"""Opening many sealed frames at once must give exactly what frame-by-frame opening gives."""
from __future__ import annotations

import base64
import json
import os

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from volt_data.errors import ProtocolError
from volt_data.protocol import frames_v2
from volt_data.protocol.batch_cipher import decrypt_cbc, encrypt_cbc
from volt_data.protocol.batch_open import open_v1_frames, open_v2_frames, v1_prefix
from volt_data.protocol.session import SEALED, parse_v1_frame, parse_v2_frame

KEY = bytes(range(32))
V1_IV = bytes(range(100, 116))
CALL = 7


def v2_frame(plaintext: bytes, *, metadata: dict | None = None, call_id: int = CALL) -> bytes:
    iv = os.urandom(16)
    return frames_v2.encode_sealed(frames_v2.PAYLOAD, call_id, metadata, iv, encrypt_cbc(KEY, iv, plaintext))


def v1_frame(plaintext: bytes, *, spaced: bool = False, call_id: int = CALL) -> str:
    message = {"invoke_id": call_id, "json_payload": base64.b64encode(encrypt_cbc(KEY, V1_IV, plaintext)).decode()}
    return json.dumps(message) if spaced else orjson.dumps(message).decode()


def v2_parts(frame: bytes) -> tuple[bytes, bytes]:
    incoming = parse_v2_frame(frame, from_server=True)
    assert incoming.kind == SEALED
    return incoming.iv, incoming.ciphertext


def v1_ciphertext(frame: str | bytes) -> bytes:
    return parse_v1_frame(frame).ciphertext


# Lengths around block and base64 boundaries: every padding case of both.
messages = st.lists(
    st.one_of(st.binary(max_size=70), st.sampled_from([b"", b"x" * 15, b"y" * 16, b"z" * 17, b"w" * 47, b"v" * 48])),
    min_size=1,
    max_size=20,
)


@settings(max_examples=150, deadline=None)
@given(plaintexts=messages)
def test_v2_batch_matches_each_frame(plaintexts: list[bytes]) -> None:
    frames = [v2_frame(plaintext) for plaintext in plaintexts]
    assert open_v2_frames(KEY, frames, v2_parts).messages() == plaintexts


@settings(max_examples=150, deadline=None)
@given(plaintexts=messages, spaced=st.booleans(), as_bytes=st.booleans())
def test_v1_batch_matches_each_frame(plaintexts: list[bytes], spaced: bool, as_bytes: bool) -> None:
    frames = [v1_frame(plaintext, spaced=spaced) for plaintext in plaintexts]
    if as_bytes:
        frames = [frame.encode() for frame in frames]
    batch = open_v1_frames(KEY, V1_IV, CALL, frames, v1_ciphertext)
    assert batch.messages() == plaintexts
    assert [decrypt_cbc(KEY, V1_IV, v1_ciphertext(frame)) for frame in frames] == plaintexts


def test_v2_frames_with_metadata_take_the_general_path() -> None:
    plaintexts = [b"first", b"second" * 9, b"third"]
    frames = [v2_frame(plaintexts[0]), v2_frame(plaintexts[1], metadata={"client_end": False}), v2_frame(plaintexts[2])]
    calls = []

    def counted(frame: bytes) -> tuple[bytes, bytes]:
        calls.append(frame)
        return v2_parts(frame)

    assert open_v2_frames(KEY, frames, counted).messages() == plaintexts
    assert len(calls) == 3


def test_v1_frames_with_other_keys_take_the_general_path() -> None:
    plaintexts = [b"one", b"two"]
    frames = [v1_frame(plaintexts[0]), json.dumps({"json_payload": json.loads(v1_frame(plaintexts[1]))["json_payload"], "invoke_id": CALL})]
    calls = []

    def counted(frame: str) -> bytes:
        calls.append(frame)
        return v1_ciphertext(frame)

    assert open_v1_frames(KEY, V1_IV, CALL, frames, counted).messages() == plaintexts
    assert len(calls) == 2


def test_v1_prefix_needs_exactly_the_two_keys_of_this_call() -> None:
    frame = v1_frame(b"x").encode()
    assert v1_prefix(frame, CALL) == b'{"invoke_id":7,"json_payload":"'
    assert v1_prefix(v1_frame(b"x", spaced=True).encode(), CALL) == b'{"invoke_id": 7, "json_payload": "'
    assert v1_prefix(frame, CALL + 1) is None
    assert v1_prefix(b'{"token":"t","invoke_id":7,"json_payload":"AAAA"}', CALL) is None
    assert v1_prefix(b'{"invoke_id":7,"json_payload":"AAAA","client_end":true}', CALL) is None


def test_v1_base64_with_json_escapes_is_read_by_the_general_parser() -> None:
    plaintexts = [os.urandom(40) for _ in range(30)]
    frames = [v1_frame(plaintext) for plaintext in plaintexts]
    escaped = [frame.replace("/", "\\/") for frame in frames]  # legal JSON for the same strings
    assert any("\\/" in frame for frame in escaped)
    assert open_v1_frames(KEY, V1_IV, CALL, escaped, v1_ciphertext).messages() == plaintexts


def test_v1_bad_base64_is_a_protocol_error() -> None:
    good = v1_frame(b"hello")
    body = json.loads(good)["json_payload"]
    for broken_body in (body[:-4] + "!!!!", "=" + body[1:], body[:-1]):
        broken = good.replace(body, broken_body)
        with pytest.raises(ProtocolError):
            open_v1_frames(KEY, V1_IV, CALL, [good, broken], v1_ciphertext)


def test_tampered_v2_ciphertext_is_a_protocol_error() -> None:
    frames = [v2_frame(b"a" * 20), v2_frame(b"b" * 5)]
    # One block: flipping the IV's last bit flips the padding byte's (11 -> 10), deterministically.
    tampered = frames[1][:28] + bytes([frames[1][28] ^ 0x01]) + frames[1][29:]
    with pytest.raises(ProtocolError, match="bad padding"):
        open_v2_frames(KEY, [frames[0], tampered], v2_parts)


def test_a_frame_of_another_call_in_the_general_path_is_refused() -> None:
    def parts_of_call(frame: bytes) -> tuple[bytes, bytes]:
        incoming = parse_v2_frame(frame, from_server=True)
        if incoming.call_id != CALL:
            raise ProtocolError(f"frame of call {incoming.call_id}")
        return incoming.iv, incoming.ciphertext

    frames = [v2_frame(b"ours"), v2_frame(b"theirs", call_id=CALL + 1)]
    with pytest.raises(ProtocolError):
        open_v2_frames(KEY, frames, parts_of_call)
