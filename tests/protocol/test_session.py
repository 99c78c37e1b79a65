"""Client and server sessions talk to each other, frame for frame, with no I/O."""
from __future__ import annotations

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from volt_data.errors import AuthenticationError, ProtocolError
from volt_data.protocol import crypto, frames_v2, session
from volt_data.protocol.envelope import encode_end, encode_invoke, encode_payload, parse_inner

VOLT_ID = "did:volt:0f0e0d0c-test"


def make_server(keys, clock=None):
    kid = crypto.fingerprint_v1(keys["client_rsa"].public_key())
    return session.ServerSession(
        VOLT_ID,
        rsa_private_key=keys["volt_rsa"],
        ed25519_private_key=keys["volt_ed"],
        v1_keys={kid: keys["client_rsa"].public_key()}.get,
        v2_keys={"session-1": keys["client_ed"].public_key()}.get,
        **({"clock": clock} if clock else {}),
    )


def client_for(keys, generation, **kwargs):
    if generation == "v1":
        return session.client_session_for(keys["client_rsa"], keys["volt_rsa"].public_key(), VOLT_ID, **kwargs)
    return session.client_session_for(
        keys["client_ed"], keys["volt_ed"].public_key(), VOLT_ID, session_id="session-1", **kwargs
    )


def open_call(client, server, call_id=1, method="/tdx.volt_api.volt.v1.VoltAPI/GetResource"):
    """Run the opening handshake; returns the server's view of the first message."""
    frames = client.open_call(call_id, encode_invoke(method, '{"resource_id":"abc"}'))
    generation, incoming = server.receive(frames[0])
    if generation == "v1":
        server.accept_v1_call(incoming)
        return generation, server.open("v1", call_id, [incoming])
    _, reply = server.accept_v2_call(incoming)
    flushed = client.accept_key_exchange(client.receive(reply))
    received = [server.receive(f)[1] for f in flushed]
    return generation, server.open("v2", call_id, received)


@pytest.mark.parametrize("generation", ["v1", "v2"])
def test_round_trip_both_directions(keys, generation):
    client, server = client_for(keys, generation), make_server(keys)
    gen, plaintexts = open_call(client, server)
    assert gen == generation
    invoke = parse_inner(plaintexts[0])
    assert invoke.kind == "invoke" and invoke.method.endswith("/GetResource")
    assert orjson.loads(invoke.json) == {"resource_id": "abc"}

    # client payload + half-close
    frames = client.send(1, encode_payload('{"x":1}')) + client.send(1, encode_end(), client_end=True)
    incoming = [server.receive(f)[1] for f in frames]
    assert incoming[-1].client_end and not incoming[0].client_end
    inner = [parse_inner(p) for p in server.open(generation, 1, incoming)]
    assert [m.kind for m in inner] == ["payload", "end"]

    # server responses, decrypted in one batch by the client
    replies = [server.seal(generation, 1, encode_payload(f'{{"n":{i}}}')) for i in range(40)]
    replies.append(server.seal(generation, 1, encode_end()))
    decoded = client.open(1, [client.receive(f) for f in replies])
    messages = [parse_inner(p) for p in decoded]
    assert [orjson.loads(m.json)["n"] for m in messages[:-1]] == list(range(40))
    assert messages[-1].kind == "end" and messages[-1].error is None


def test_v2_frames_follow_the_reference_layout(keys):
    client, server = client_for(keys, "v2"), make_server(keys)
    kx = client.open_call(7, encode_invoke("/x.Y/Z", None))[0]
    assert kx[:2] == b"\x01\x01" and int.from_bytes(kx[2:10], "big") == 7
    assert kx[10:12] == b"\x00\x00"  # no relay: empty metadata
    assert kx[12] == 64  # Ed25519 signature length
    _, incoming = server.receive(kx)
    _, reply = server.accept_v2_call(incoming)
    assert reply[:2] == b"\x01\x01" and reply[10] == 44 and reply[11:23] == crypto.X25519_SPKI_PREFIX
    assert len(reply) == 10 + 1 + 44 + 1 + 16 + 1 + 64  # 137 bytes, as in the reference example
    sealed = server.seal("v2", 7, encode_end())
    assert sealed[1] == frames_v2.PAYLOAD and sealed[12] == 16


def test_v2_queues_until_key_exchange(keys):
    client, server = client_for(keys, "v2"), make_server(keys)
    client.open_call(1, encode_invoke("/x.Y/Z", None))
    assert client.send(1, encode_end(), client_end=True) == []  # queued
    assert not client.is_ready(1)


def test_v1_token_shape(keys):
    client = client_for(keys, "v1")
    frame = orjson.loads(client.open_call(3, encode_invoke("/x.Y/Z", None))[0])
    assert frame["id"] == 3 and frame["target_fingerprint"] == []
    header = orjson.loads(crypto.b64url_decode(frame["token"].split(".")[0]))
    assert header == {"alg": "RS256", "typ": "JWT", "kid": crypto.fingerprint_v1(keys["client_rsa"].public_key())}
    claims = orjson.loads(crypto.b64url_decode(frame["token"].split(".")[1]))
    assert claims["aud"] == VOLT_ID and claims["exp"] - claims["iat"] == 120


@pytest.mark.parametrize("generation", ["v1", "v2"])
def test_expired_and_future_tokens_are_refused(keys, generation):
    client = client_for(keys, generation, clock=lambda: 1_000_000.0)
    frame = client.open_call(1, encode_invoke("/x.Y/Z", None))[0]
    for now, reason in [(1_000_000 + 200, "expired"), (1_000_000 - 200, "not yet valid")]:
        server = make_server(keys, clock=lambda now=now: now)
        generation_seen, incoming = server.receive(frame)
        with pytest.raises(AuthenticationError, match=reason):
            if generation_seen == "v1":
                server.accept_v1_call(incoming)
            else:
                server.accept_v2_call(incoming)
        assert not server.has_call(generation_seen, 1)


@pytest.mark.parametrize("generation", ["v1", "v2"])
def test_wrong_audience_and_unknown_key_are_refused(keys, generation):
    client = session.client_session_for(
        *((keys["client_rsa"], keys["volt_rsa"].public_key()) if generation == "v1"
          else (keys["client_ed"], keys["volt_ed"].public_key())),
        "did:volt:someone-else", session_id="session-1",
    )
    server = make_server(keys)
    _, incoming = server.receive(client.open_call(1, encode_invoke("/x.Y/Z", None))[0])
    with pytest.raises(AuthenticationError, match="audience"):
        server.accept_v1_call(incoming) if generation == "v1" else server.accept_v2_call(incoming)
    stranger = {
        "client_rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "client_ed": ed25519.Ed25519PrivateKey.generate(),
    }
    client = client_for({**keys, **stranger}, generation)
    _, incoming = server.receive(client.open_call(1, encode_invoke("/x.Y/Z", None))[0])
    with pytest.raises(AuthenticationError, match="unknown client key|does not verify"):
        server.accept_v1_call(incoming) if generation == "v1" else server.accept_v2_call(incoming)


def test_v2_client_refuses_a_forged_key_exchange(keys):
    client = client_for(keys, "v2")
    impostor = make_server({**keys, "volt_ed": ed25519.Ed25519PrivateKey.generate()})
    _, incoming = impostor.receive(client.open_call(1, encode_invoke("/x.Y/Z", None))[0])
    _, reply = impostor.accept_v2_call(incoming)
    with pytest.raises(AuthenticationError, match="key-exchange signature"):
        client.accept_key_exchange(client.receive(reply))


@pytest.mark.parametrize("generation", ["v1", "v2"])
def test_tampered_ciphertext_is_a_protocol_error(keys, generation):
    # Flipping a bit of the block before the last flips the same bit of the padding byte
    # (CBC), so the padding check must fail; tampering the last block itself would leave
    # valid padding by chance about once in 256 runs.
    client, server = client_for(keys, generation), make_server(keys)
    open_call(client, server)
    frame = server.seal(generation, 1, encode_payload('{"n":1}'))
    if generation == "v1":
        message = orjson.loads(frame)
        raw = bytearray(crypto.b64_decode(message["json_payload"]))
        raw[-17] ^= 0x55
        message["json_payload"] = crypto.b64_encode(bytes(raw))
        frame = orjson.dumps(message).decode()
    else:
        frame = frame[:-17] + bytes([frame[-17] ^ 0x55]) + frame[-16:]
    with pytest.raises(ProtocolError):
        client.open(1, [client.receive(frame)])


def test_envelope_errors_decode_for_both_generations():
    v1 = session.parse_v1_frame(session.ServerSession.envelope_error("v1", 4, "boom"))
    assert (v1.kind, v1.call_id, v1.error) == ("envelope_error", 4, "boom")
    v2 = session.parse_v2_frame(session.ServerSession.envelope_error("v2", 5, "bang"), from_server=True)
    assert (v2.kind, v2.call_id, v2.error) == ("envelope_error", 5, "bang")


def test_mismatched_key_types_name_the_problem(keys):
    with pytest.raises(ProtocolError, match="both be RSA"):
        session.client_session_for(keys["client_rsa"], keys["volt_ed"].public_key(), VOLT_ID)


@pytest.mark.parametrize("generation", ["v1", "v2"])
def test_single_frame_and_batch_decryption_agree(keys, generation):
    client, server = client_for(keys, generation), make_server(keys)
    open_call(client, server)
    messages = [encode_payload("x" * size) for size in (0, 1, 15, 16, 17, 100, 1000)] * 3
    frames = [client.receive(server.seal(generation, 1, m)) for m in messages]
    one_by_one = [client.open(1, [frame])[0] for frame in frames]  # the per-frame path
    assert one_by_one == client.open(1, frames) == messages  # 21 frames: the batch path


def test_fast_and_general_v2_frame_parsers_agree():
    import os

    for metadata in (None, {"client_end": True}, {"error": "x", "n": 1}):
        frame = frames_v2.encode_sealed(3, 2**64 - 1, metadata, os.urandom(16), os.urandom(48))
        fast = session.parse_v2_frame(frame, from_server=True)
        general = frames_v2.decode_sealed(frame)
        assert (fast.call_id, fast.iv, fast.ciphertext, fast.metadata) == (
            general.call_id, general.iv, general.ciphertext, general.metadata)
    with pytest.raises(ProtocolError):
        session.parse_v2_frame(b"\x01\x03" + bytes(8) + b"\x00\x05{}", from_server=True)
