"""Batch sealing (the server's row hot path) gives exactly the frames of sealing one by one."""
from __future__ import annotations

import os
import random

import orjson
import pytest

from volt_data.errors import ProtocolError
from volt_data.protocol import crypto, frames_v2, session
from volt_data.protocol.batch_cipher import decrypt_cbc, encrypt_cbc
from volt_data.protocol.batch_seal import BatchSealer, payload_inners
from volt_data.protocol.envelope import encode_end, encode_invoke, encode_payload, parse_inner

VOLT_ID = "did:volt:batch-seal-test"

# 0..100 bytes (every padding length, one to seven blocks), exact block multiples,
# and a few long messages, so block positions have very different message counts.
LENGTHS = list(range(101)) + [112, 128, 160, 255, 256, 257, 1000, 4096]


def messages(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    plaintexts = [rng.randbytes(length) for length in LENGTHS]
    rng.shuffle(plaintexts)
    return plaintexts


@pytest.mark.parametrize("seed", [1, 2])
def test_per_message_ivs_give_per_message_cbc(seed):
    key = os.urandom(32)
    plaintexts = messages(seed)
    ivs = os.urandom(16 * len(plaintexts))
    sealed = BatchSealer(key).encrypt_many(ivs, plaintexts)
    expected = [encrypt_cbc(key, ivs[16 * i:16 * i + 16], p) for i, p in enumerate(plaintexts)]
    assert sealed == expected


def test_a_shared_iv_gives_per_message_cbc():
    key, iv = os.urandom(32), os.urandom(16)
    plaintexts = messages(3)
    sealed = BatchSealer(key).encrypt_many(iv, plaintexts)
    assert sealed == [encrypt_cbc(key, iv, p) for p in plaintexts]
    assert [decrypt_cbc(key, iv, c) for c in sealed] == plaintexts


def test_joined_offsets_and_reuse_of_one_sealer():
    key = os.urandom(32)
    sealer = BatchSealer(key)
    for seed in range(3):  # the ECB context carries no state from one batch to the next
        plaintexts = messages(seed)[:20]
        ivs = os.urandom(16 * len(plaintexts))
        joined, offsets = sealer.encrypt_joined(ivs, plaintexts)
        assert offsets[0] == 0 and offsets[-1] == len(joined) and len(offsets) == len(plaintexts) + 1
        for i, plaintext in enumerate(plaintexts):
            assert joined[offsets[i]:offsets[i + 1]] == encrypt_cbc(key, ivs[16 * i:16 * i + 16], plaintext)


def test_a_fixed_prefix_and_suffix_wrap_every_message():
    key, prefix, suffix = os.urandom(32), b'{"method_payload":{"json_payload":"', b'"}}'
    bodies = messages(7)
    ivs = os.urandom(16 * len(bodies))
    sealed = BatchSealer(key).encrypt_many(ivs, bodies, prefix=prefix, suffix=suffix)
    assert sealed == [encrypt_cbc(key, ivs[16 * i:16 * i + 16], prefix + b + suffix) for i, b in enumerate(bodies)]


def test_with_ivs_each_ciphertext_follows_its_iv():
    key = os.urandom(32)
    plaintexts = messages(8)
    ivs = os.urandom(16 * len(plaintexts))
    joined, offsets = BatchSealer(key).encrypt_joined(ivs, plaintexts, with_ivs=True)
    assert offsets[-1] == len(joined)
    for i, plaintext in enumerate(plaintexts):
        iv = ivs[16 * i:16 * i + 16]
        assert joined[offsets[i]:offsets[i + 1]] == iv + encrypt_cbc(key, iv, plaintext)
    with pytest.raises(ValueError):
        BatchSealer(key).encrypt_joined(ivs[:16], plaintexts, with_ivs=True)


def test_edge_batches():
    sealer = BatchSealer(os.urandom(32))
    assert sealer.encrypt_many(os.urandom(16), []) == []
    assert len(sealer.encrypt_many(os.urandom(16), [b""])[0]) == 16  # a whole block of padding
    with pytest.raises(ProtocolError):
        sealer.encrypt_many(os.urandom(20), [b"a", b"b"])


TEXTS = [
    '{"row":{"column":[{"integer":"1"},{"text":"plain"}]}}',
    '{"row":{"column":[{"text":"quote \\" and backslash \\\\ and \\u0000"}]}}',
    '{"row":{"column":[{"text":"a\\",\\"b"}]}}',
    "",
    '"',
    '",',  # ends in an escaped quote and a comma: the cut at "," would be wrong
    'x",',
    "\\",
    "é ü 中文 😀 \x7f",
    "\n\r\t\b\f\x01\x1f",
    "{}",
]


def test_payload_inners_are_encode_payload():
    assert payload_inners(TEXTS) == [encode_payload(text) for text in TEXTS]
    for text in TEXTS:
        assert payload_inners([text, text]) == [encode_payload(text)] * 2
    safe = [t for t in TEXTS if '",' not in t]
    assert payload_inners(safe) == [encode_payload(text) for text in safe]
    assert payload_inners([]) == []


# ------------------------------------------------------------------ ServerSession.seal_many


def opened_call(keys, generation, call_id=7):
    """A client session and a server session with call ``call_id`` open between them."""
    kid = crypto.fingerprint_v1(keys["client_rsa"].public_key())
    server = session.ServerSession(
        VOLT_ID,
        rsa_private_key=keys["volt_rsa"],
        ed25519_private_key=keys["volt_ed"],
        v1_keys={kid: keys["client_rsa"].public_key()}.get,
        v2_keys={"session-1": keys["client_ed"].public_key()}.get,
    )
    if generation == "v1":
        client = session.client_session_for(keys["client_rsa"], keys["volt_rsa"].public_key(), VOLT_ID)
    else:
        client = session.client_session_for(
            keys["client_ed"], keys["volt_ed"].public_key(), VOLT_ID, session_id="session-1"
        )
    frames = client.open_call(call_id, encode_invoke("/tdx.volt_api.volt.v1.VoltAPI/GetResource", "{}"))
    _, incoming = server.receive(frames[0])
    if generation == "v1":
        server.accept_v1_call(incoming)
    else:
        _, reply = server.accept_v2_call(incoming)
        client.accept_key_exchange(client.receive(reply))
    return client, server


@pytest.mark.parametrize("generation", ["v1", "v2"])
def test_seal_many_frames_open_with_the_client_path(keys, generation):
    client, server = opened_call(keys, generation)
    inners = messages(4)
    frames = server.seal_many(generation, 7, inners)
    assert len(frames) == len(inners)
    assert all(type(frame) is (str if generation == "v1" else bytes) for frame in frames)
    incoming = [client.receive(frame) for frame in frames]
    # one by one (the per-frame path) and in one batch
    assert [client.open(7, [one])[0] for one in incoming] == inners
    assert client.open(7, incoming) == inners


@pytest.mark.parametrize("generation", ["v1", "v2"])
def test_seal_many_carries_rows_and_end_like_seal(keys, generation):
    client, server = opened_call(keys, generation)
    texts = [orjson.dumps({"row": {"n": n, "text": TEXTS[n % len(TEXTS)]}}).decode() for n in range(300)]
    frames = server.seal_many(generation, 7, payload_inners(texts))
    frames += server.seal_many(generation, 7, [encode_end()])
    decoded = [parse_inner(p) for p in client.open(7, [client.receive(f) for f in frames])]
    assert [m.json for m in decoded[:-1]] == texts
    assert decoded[-1].kind == "end" and decoded[-1].error is None


def test_v1_frames_are_byte_for_byte_those_of_seal(keys):
    # v1 uses the call's IV for every frame, so sealing is deterministic.
    _, server = opened_call(keys, "v1", call_id=12345)
    inners = messages(5)
    assert server.seal_many("v1", 12345, inners) == [server.seal("v1", 12345, i) for i in inners]
    assert server.seal_many("v1", 12345, inners, encoded=True) == [
        server.seal("v1", 12345, i).encode() for i in inners
    ]


def test_v2_frames_have_the_layout_of_seal_and_a_fresh_iv_each(keys):
    _, server = opened_call(keys, "v2", call_id=2**40 + 3)
    inners = messages(6)
    frames = server.seal_many("v2", 2**40 + 3, inners)
    ivs = set()
    for frame, inner in zip(frames, inners):
        reference = server.seal("v2", 2**40 + 3, inner)
        assert len(frame) == len(reference)
        decoded, expected = frames_v2.decode_sealed(frame), frames_v2.decode_sealed(reference)
        assert (decoded.frame_type, decoded.call_id, decoded.metadata) == (
            expected.frame_type, expected.call_id, expected.metadata)
        assert frame[:29 - 16] == reference[:29 - 16]  # preamble, metadata length, IV length
        assert len(decoded.iv) == 16
        ivs.add(decoded.iv)
    assert len(ivs) == len(frames)


@pytest.mark.parametrize("generation", ["v1", "v2"])
def test_seal_many_needs_an_open_call_and_forgets_with_it(keys, generation):
    client, server = opened_call(keys, generation)
    assert server.seal_many(generation, 7, []) == []
    with pytest.raises(ProtocolError):
        server.seal_many(generation, 8, [b"x"])
    server.seal_many(generation, 7, [b"x"])
    server.forget(generation, 7)
    with pytest.raises(ProtocolError):
        server.seal_many(generation, 7, [b"x"])


def split_framed(data: bytes, header_length) -> list[bytes]:
    """Cut ``seal_payloads`` output apart again, using the frame header rule under test."""
    frames, at = [], 0
    while at < len(data):
        length, size = header_length(data, at)
        frames.append(data[at + size:at + size + length])
        at += size + length
    return frames


def length_header(data: bytes, at: int) -> tuple[int, int]:
    """The test's framing: a 4-byte big-endian length."""
    return int.from_bytes(data[at:at + 4], "big"), 4


class LengthHeaders(dict):
    def __missing__(self, length: int) -> bytes:
        return length.to_bytes(4, "big")


@pytest.mark.parametrize("generation", ["v1", "v2"])
def test_seal_payloads_joins_the_payload_frames_behind_their_headers(keys, generation):
    client, server = opened_call(keys, generation)
    texts = [orjson.dumps({"n": n, "text": TEXTS[n % len(TEXTS)] * (n % 7)}).decode() for n in range(200)]
    data = server.seal_payloads(generation, 7, texts, LengthHeaders())
    frames = split_framed(data, length_header)
    assert len(frames) == len(texts)
    if generation == "v1":  # deterministic: exactly the frames of seal
        assert frames == [server.seal("v1", 7, encode_payload(t)).encode() for t in texts]
        frames = [frame.decode() for frame in frames]
    decoded = [parse_inner(p) for p in client.open(7, [client.receive(f) for f in frames])]
    assert [m.json for m in decoded] == texts
    assert server.seal_payloads(generation, 7, [], LengthHeaders()) == b""
    with pytest.raises(ProtocolError):
        server.seal_payloads(generation, 8, texts, LengthHeaders())
