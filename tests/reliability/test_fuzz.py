"""Hostile input: every decoder answers garbage with its documented error, never anything else.

Property tests (hypothesis) feed arbitrary bytes and values to each frame
decoder of both generations and both directions, to the inner-envelope and
token parsers, to the session ``open`` of both sides, to the Execute row
decoder and to the config loader. The documented outcome is a
:class:`~volt_data.errors.ProtocolError` (frames, tokens, ciphertext),
:class:`~volt_data.errors.CallError` / ``ProtocolError`` (rows) or
:class:`~volt_data.errors.ConfigError` (config); any other exception type is a
bug a hostile peer could use to break a reader loop.
"""
from __future__ import annotations

import base64
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from volt_data.config import parse_config
from volt_data.data.decoder import ExecuteDecoder
from volt_data.errors import CallError, ConfigError, ProtocolError
from volt_data.protocol import envelope, frames_v2, tokens
from volt_data.protocol.session import (
    SEALED,
    Incoming,
    ServerSession,
    client_session_for,
    parse_v1_frame,
    parse_v2_frame,
)

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def json_objects_with(keys: list[str]):
    """JSON objects whose keys are drawn mostly from ``keys``: reaches deeper code paths than random text."""
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=8), json_values, max_size=5)


# ------------------------------------------------------------------ v2 frames, both directions

V2_HEADER = st.builds(
    lambda frame_type, call_id, rest: bytes([frames_v2.VERSION, frame_type]) + call_id.to_bytes(8, "big") + rest,
    st.integers(0, 255),
    st.integers(0, 2**64 - 1),
    st.binary(max_size=200),
)
V2_FRAMES = st.binary(max_size=300) | V2_HEADER


@FUZZ
@given(frame=V2_FRAMES, from_server=st.booleans())
def test_v2_frame_parser_raises_only_protocol_error(frame: bytes, from_server: bool) -> None:
    try:
        incoming = parse_v2_frame(frame, from_server=from_server)
    except ProtocolError:
        return
    assert isinstance(incoming, Incoming)


@FUZZ
@given(frame=V2_FRAMES)
def test_v2_section_decoders_raise_only_protocol_error(frame: bytes) -> None:
    for decode in (frames_v2.decode_client_key_exchange, frames_v2.decode_server_key_exchange,
                   frames_v2.decode_sealed, frames_v2.read_preamble):
        try:
            decode(frame)
        except ProtocolError:
            pass


def test_v2_preamble_version_is_checked() -> None:
    """A sanity anchor for the property above: the fuzzed decoders do refuse."""
    with pytest.raises(ProtocolError):
        parse_v2_frame(b"\x09\x03" + bytes(8), from_server=True)


# ------------------------------------------------------------------ v1 frames, tokens, envelopes

V1_KEYS = ["id", "invoke_id", "json_payload", "error", "token", "client_end", "target_fingerprint"]


@FUZZ
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
       | json_objects_with(V1_KEYS).map(lambda o: json.dumps(o)))
def test_v1_frame_parser_raises_only_protocol_error(text: str) -> None:
    try:
        incoming = parse_v1_frame(text)
    except ProtocolError:
        return
    assert incoming.call_id is None or incoming.call_id >= 0


def _b64url(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


TOKENS = st.text(max_size=120) | st.builds(
    lambda header, claims, signature: ".".join((_b64url(json.dumps(header).encode()), _b64url(json.dumps(claims).encode()),
                                                _b64url(signature))),
    json_objects_with(["alg", "kid", "typ"]) | json_values,
    json_objects_with(["aud", "iat", "exp", "sk", "iv", "sub"]) | json_values,
    st.binary(max_size=64),
)


@FUZZ
@given(token=TOKENS)
def test_v1_token_parser_raises_only_protocol_error(token: str) -> None:
    try:
        parsed = tokens.parse_v1_token(token)
    except ProtocolError:  # AuthenticationError is a ProtocolError
        return
    assert parsed.kid


@FUZZ
@given(claims=json_values, audience=st.text(max_size=10), now=st.floats(0, 2e9))
def test_claim_checks_raise_only_protocol_error(claims, audience: str, now: float) -> None:
    try:
        tokens.check_claims(claims if isinstance(claims, dict) else {"aud": claims}, audience, now)
    except ProtocolError:
        pass


INNER_KEYS = ["method_invoke", "method_payload", "method_end"]


@FUZZ
@given(plaintext=st.binary(max_size=200) | json_objects_with(INNER_KEYS).map(lambda o: json.dumps(o).encode())
       | st.dictionaries(st.sampled_from(INNER_KEYS),
                         json_objects_with(["method_name", "json_request", "json_payload", "error", "service_id"]),
                         min_size=1, max_size=1).map(lambda o: json.dumps(o).encode()))
def test_inner_envelope_parser_raises_only_protocol_error(plaintext: bytes) -> None:
    try:
        inner = envelope.parse_inner(plaintext)
    except ProtocolError:
        return
    assert inner.kind in (envelope.INVOKE, envelope.PAYLOAD, envelope.END)


# ------------------------------------------------------------------ sessions opening garbage ciphertext

@pytest.fixture(scope="module")
def sessions(local_volt):
    """An open call (id 1) on a client session and on the server session, both generations."""
    from cryptography.hazmat.primitives import serialization

    opened = {}
    state = local_volt.state
    for generation in ("v1", "v2"):
        config = local_volt.client_config(name="fuzzer", protocol=generation, access="read")
        key = serialization.load_pem_private_key(config["credential"]["key"].encode(), password=None)
        volt_key = serialization.load_pem_public_key(config["volt"]["public_key"].encode())
        client = client_session_for(key, volt_key, config["volt"]["id"],
                                    session_id=config["credential"].get("session_id"))
        server = ServerSession(state.volt_id, rsa_private_key=state.rsa_key, ed25519_private_key=state.ed25519_key,
                               v1_keys=state.v1_public_key, v2_keys=state.v2_public_key)
        first = client.open_call(1, envelope.encode_invoke("/x", "{}"))[0]
        _, incoming = server.receive(first)
        if generation == "v1":
            server.accept_v1_call(incoming)
        else:
            _, reply = server.accept_v2_call(incoming)
            client.accept_key_exchange(client.receive(reply))
        opened[generation] = (client, server)
    return opened


@FUZZ
@given(generation=st.sampled_from(["v1", "v2"]), ciphertext=st.binary(max_size=96),
       iv=st.binary(min_size=16, max_size=16) | st.binary(max_size=20), call_id=st.sampled_from([1, 2]))
def test_session_open_of_garbage_ciphertext_raises_only_protocol_error(
    sessions, generation: str, ciphertext: bytes, iv: bytes, call_id: int
) -> None:
    client, server = sessions[generation]
    frame = Incoming(SEALED, call_id, ciphertext=ciphertext, iv=b"" if generation == "v1" else iv)
    for open_frames in (lambda: client.open(call_id, [frame]), lambda: server.open(generation, call_id, [frame])):
        try:
            plaintexts = open_frames()
        except ProtocolError:
            continue
        assert len(plaintexts) == 1  # garbage that happens to have valid padding decrypts to bytes


# ------------------------------------------------------------------ row decoder

ROW_SHAPES = st.one_of(
    st.binary(max_size=120).map(lambda b: b.decode("latin-1")),
    json_objects_with(["row", "header", "status", "affected_rows", "column"]).map(
        lambda o: json.dumps(o)),
    st.builds(lambda cells: '{"row":' + json.dumps({"column": cells}) + "}",
              st.lists(json_objects_with(["integer", "real", "text", "blob", "null", "int64_value", "double_value", "string_value"]),
                       max_size=4) | json_values),
    st.builds(lambda columns: json.dumps({"header": {"column": columns}}),
              st.lists(json_objects_with(["name", "type", "declared_type"]), max_size=4) | json_values),
)


@FUZZ
@given(responses=st.lists(ROW_SHAPES, max_size=8), batch_rows=st.integers(1, 4))
def test_row_decoder_raises_only_call_or_protocol_error(responses: list[str], batch_rows: int) -> None:
    decoder = ExecuteDecoder(batch_rows=batch_rows)
    try:
        batches = decoder.feed_responses(responses) + decoder.finish()
        decoder.unify(batches)
    except (CallError, ProtocolError):
        pass


@FUZZ
@given(responses=st.lists(ROW_SHAPES, max_size=8))
def test_row_decoder_envelope_path_raises_only_call_or_protocol_error(responses: list[str]) -> None:
    envelopes = [envelope.encode_payload(text) for text in responses]
    decoder = ExecuteDecoder()
    try:
        decoder.unify(decoder.feed(envelopes) + decoder.finish())
    except (CallError, ProtocolError):
        pass


# ------------------------------------------------------------------ config loader

CONFIG_SECTIONS = st.fixed_dictionaries(
    {},
    optional={
        "credential": json_objects_with(["key", "client_id", "session_id", "identity_did"]) | json_values,
        "volt": json_objects_with(["id", "public_key", "http_address", "address", "fingerprint", "ca_pem",
                                   "relay_address", "display_name"]) | json_values,
        "client_name": json_values,
    },
)


@FUZZ
@given(raw=CONFIG_SECTIONS | json_values, passphrase=st.none() | st.text(max_size=8))
def test_config_loader_raises_only_config_error(raw, passphrase) -> None:
    try:
        parse_config(raw, passphrase=passphrase)
    except ConfigError:
        pass


@FUZZ
@given(key=st.text(max_size=100) | st.sampled_from(["-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                                                    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n!!\n"]),
       passphrase=st.none() | st.text(max_size=8) | st.binary(max_size=8))
def test_config_loader_with_bad_keys_raises_only_config_error(local_volt, key: str, passphrase) -> None:
    config = local_volt.client_config(name="fuzzer", protocol="v2", access="read")
    config = {**config, "credential": {**config["credential"], "key": key}}
    try:
        parse_config(config, passphrase=passphrase)
    except ConfigError:
        pass


def test_a_good_config_still_loads(local_volt) -> None:
    """Anchor: the strategies above are not just hitting an always-failing path."""
    assert parse_config(local_volt.client_config(name="fuzzer", protocol="v1", access="read")).generation == "v1"


# ------------------------------------------------------------------ against the running server

@pytest.fixture(scope="module")
def hostile_socket(local_volt):
    from websockets.sync.client import connect

    with connect(local_volt.http_address.replace("http", "ws", 1) + "/api", max_size=None) as websocket:
        yield websocket


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=V2_FRAMES | st.text(max_size=200)
       | json_objects_with(V1_KEYS).map(lambda o: json.dumps(o)))
def test_random_frames_over_a_real_socket_never_crash_the_server(local_volt, hostile_socket, frame) -> None:
    hostile_socket.send(frame)  # answered with an envelope error, or ignored; never a crash


def test_the_server_still_serves_after_the_random_frames(local_volt, hostile_socket) -> None:
    """Runs after the property above: the same socket and a new client both still work."""
    from volt_data import connect as connect_sync

    answers = 0
    try:
        while True:
            hostile_socket.recv(timeout=0.5)  # envelope errors for the garbage
            answers += 1
    except TimeoutError:
        pass
    assert answers > 0
    assert hostile_socket.ping().wait(5)  # the hostile connection itself is still served
    with connect_sync(local_volt.client_config(protocol="v2")) as client:
        assert client.get_resource({"resource_id": client.config.client_id})["resource"]


async def test_oversized_frames_are_refused_on_both_sides(tmp_path) -> None:
    from websockets.asyncio.client import connect as ws_connect
    from websockets.exceptions import ConnectionClosed

    from volt_data import ConnectionLostError, VoltClient
    from volt_data.client.connection import Connection
    from volt_data.config import load_config
    from volt_data.local import LocalVolt
    from volt_data.schema import resolve_method

    limit = 64 * 1024
    async with LocalVolt(tmp_path / "volt", max_size=limit) as volt:
        config = volt.client_config(protocol="v2")
        # server side: a frame over max_size closes that connection (1009), nothing else
        async with ws_connect(volt.http_address.replace("http", "ws", 1) + "/api", max_size=None) as websocket:
            await websocket.send(bytes(2 * limit))
            with pytest.raises(ConnectionClosed) as closed:
                await websocket.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        async with VoltClient(config) as good:
            assert (await good.get_resource({"resource_id": good.config.client_id}))["resource"]
            database_id = (await good.create_database({"name": "big"}))["resource"]["id"]
        # client side: a response frame over max_frame_bytes fails the call, not the process
        connection = Connection(load_config(config), max_frame_bytes=4096)
        await connection.open()
        try:
            call = await connection.start_call(resolve_method("Execute"), {"start": {
                "database_id": database_id, "statement": "SELECT hex(zeroblob(20000)) AS big"}})
            with pytest.raises(ConnectionLostError, match="lost"):
                await call.wait(5)
        finally:
            await connection.close()
