"""Refused calls never run, and neither refusals nor garbage break the connection."""
from __future__ import annotations

import json
import logging
import time

import orjson
import pytest

from tests.local.server_harness import (
    CREATE_DATABASE,
    GET_RESOURCE,
    Wire,
    fingerprint_of,
    session_for,
    stranger_keys,
    ws_url,
)
from volt_data.local import LocalVolt
from volt_data.protocol import crypto, frames_v2
from volt_data.protocol.envelope import encode_invoke

GENERATIONS = ["v1", "v2"]


@pytest.fixture(scope="module")
def volt():
    with LocalVolt() as running:
        yield running


@pytest.fixture(params=GENERATIONS)
def generation(request) -> str:
    return request.param


@pytest.fixture
async def wire(volt, generation):
    opened = await Wire.open(ws_url(volt.client_config(protocol=generation)))
    yield opened
    await opened.close()


def forged(config: dict, generation: str):
    """A session that claims the owner's identity but signs with another key."""
    if generation == "v1":
        session = session_for(config, private_key=stranger_keys("v1"))
        session.kid = fingerprint_of(config)  # the owner's kid, a stranger's signature
        return session
    return session_for(config, private_key=stranger_keys("v2"))  # owner's session id as sub


REFUSALS = {
    "forged signature": lambda config, generation: forged(config, generation),
    "unknown key": lambda config, generation: session_for(
        config, private_key=stranger_keys(generation), session_id="no-such-session"),
    "expired token": lambda config, generation: session_for(config, clock=lambda: time.time() - 3600),
    "wrong audience": lambda config, generation: session_for(config, audience="did:volt:someone-else"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
async def test_refused_calls_never_run_and_the_connection_survives(volt, generation, wire, case, caplog):
    config = volt.client_config(protocol=generation)
    home = config["credential"]["client_id"]
    name = f"refused-{generation}-{case.replace(' ', '-')}"
    bad_session = REFUSALS[case](config, generation)
    with caplog.at_level(logging.WARNING, logger="volt_data.local.server"):
        outcome = await wire.call(bad_session, CREATE_DATABASE, {"name": name})
    if generation == "v1":  # an encrypted method_end error, which the 0.1.14 client can show
        assert outcome.end_error and outcome.end_error.startswith("unauthenticated")
    else:
        assert outcome.envelope_error and outcome.envelope_error.startswith("unauthenticated")
    assert outcome.responses == []
    assert any("refused" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert volt.services.store.find_child(home, name) is None  # the request was never executed

    good = await wire.call(session_for(config), GET_RESOURCE, {"resource_id": home})
    assert good.responses[-1]["resource"]["id"] == home


async def test_the_same_request_with_a_valid_token_does_run(volt, generation, wire):
    config = volt.client_config(protocol=generation)
    name = f"accepted-{generation}"
    outcome = await wire.call(session_for(config), CREATE_DATABASE, {"name": name})
    assert outcome.end_error is None and "resource" in outcome.responses[-1]
    assert volt.services.store.find_child(config["credential"]["client_id"], name) is not None


def tamper(frame):
    """Flip bits of the last byte of the next-to-last ciphertext block: in CBC that flips the
    same bits of the padding byte (n -> n ^ 0x55 > 16), so the padding check always fails.
    (Flipping the last block itself garbles it, and 1 time in ~256 the padding still checks.)"""
    if isinstance(frame, str):
        message = orjson.loads(frame)
        raw = bytearray(crypto.b64_decode(message["json_payload"]))
        raw[-17] ^= 0x55
        message["json_payload"] = crypto.b64_encode(bytes(raw))
        return orjson.dumps(message).decode()
    return frame[:-17] + bytes([frame[-17] ^ 0x55]) + frame[-16:]


async def test_tampered_invoke_is_an_envelope_error_and_never_runs(volt, generation, wire):
    config = volt.client_config(protocol=generation)
    session = session_for(config)
    name = f"tampered-{generation}"
    frames = session.open_call(1, encode_invoke(CREATE_DATABASE, json.dumps({"name": name})))
    if generation == "v2":  # complete the key exchange, then spoil the invoke that follows it
        await wire.websocket.send(frames[0])
        frames = session.accept_key_exchange(session.receive(await wire.websocket.recv()))
    await wire.websocket.send(tamper(frames[0]))
    wire.next_id = 2
    outcome = await wire.finish(session, 1)
    assert outcome.envelope_error and "padding" in outcome.envelope_error
    home = config["credential"]["client_id"]
    assert volt.services.store.find_child(home, name) is None
    good = await wire.call(session, GET_RESOURCE, {"resource_id": home})
    assert good.responses[-1]["resource"]["id"] == home


GARBAGE = {
    "v1": ["not json", "[1,2]", '{"id": "x", "json_payload": "AAAA"}', '{"id": 9, "json_payload": "!!"}',
           '{"id": 9, "json_payload": "AAAAAAAAAAAAAAAAAAAAAA=="}'],
    "v2": [b"", b"\x07garbage-frame", b"\x01\x01\x00", b"\x01\x03" + bytes(8) + b"\xff\xff",
           frames_v2.encode_sealed(3, 42, None, bytes(16), bytes(16))],
}


async def test_garbage_frames_get_envelope_errors_and_the_server_keeps_serving(volt, generation, wire):
    config = volt.client_config(protocol=generation)
    session = session_for(config)
    for frame in GARBAGE[generation]:
        await wire.websocket.send(frame)
        answer = session.receive(await wire.websocket.recv())
        assert answer.kind == "envelope_error" and answer.error, frame
    home = config["credential"]["client_id"]
    good = await wire.call(session, GET_RESOURCE, {"resource_id": home})
    assert good.responses[-1]["resource"]["id"] == home
