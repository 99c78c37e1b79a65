"""The local Volt's transport over real websockets: routing, method errors, ends, disconnects."""
from __future__ import annotations

import asyncio
import json

import pytest

from tests.local.server_harness import GET_RESOURCE, SUBSCRIBE_WIRE, Wire, session_for, ws_url
from volt_data.local import LocalVolt
from volt_data.schema import METHODS

GENERATIONS = ["v1", "v2"]


@pytest.fixture(scope="module")
def volt():
    with LocalVolt() as running:
        running.sample = running.load_sample()
        yield running


@pytest.fixture(scope="module")
def configs(volt):
    return {generation: volt.client_config("owner", protocol=generation) for generation in GENERATIONS}


@pytest.mark.parametrize("path", ["/api", "/", "/anything/else"])
async def test_both_generations_share_one_endpoint(volt, configs, path):
    wire = await Wire.open(ws_url(configs["v1"], path))
    try:
        for generation in GENERATIONS:
            config = configs[generation]
            home = config["credential"]["client_id"]
            outcome = await wire.call(session_for(config), GET_RESOURCE, {"resource_id": home})
            assert outcome.ended and outcome.end_error is None
            assert outcome.responses[-1]["resource"]["id"] == home
            assert outcome.responses[-1]["resource"]["kind"] == ["volt:folder"]
    finally:
        await wire.close()


@pytest.fixture(params=GENERATIONS)
async def client(request, configs):
    wire = await Wire.open(ws_url(configs[request.param]))
    yield wire, session_for(configs[request.param]), configs[request.param]
    await wire.close()


async def test_unknown_method_ends_with_an_error(client):
    wire, session, _ = client
    outcome = await wire.call(session, "/tdx.volt_api.volt.v1.VoltAPI/NoSuchMethod", {})
    assert outcome.end_error == "unknown method /tdx.volt_api.volt.v1.VoltAPI/NoSuchMethod"
    assert outcome.responses == []


async def test_unimplemented_method_answers_status_12(volt, client):
    wire, session, _ = client
    path = next(p for p in sorted(METHODS) if volt.services.handler_for(p) is None and METHODS[p].is_unary)
    outcome = await wire.call(session, path, {})
    assert outcome.ended and outcome.end_error is None
    assert outcome.responses == [{"status": {
        "code": 12, "message": "unimplemented", "description": f"{path} is not implemented by the local Volt"}}]


async def test_bad_request_field_is_invalid_arguments_naming_it(client):
    wire, session, _ = client
    outcome = await wire.call(session, GET_RESOURCE, {"resouce_id": "x"})
    status = outcome.responses[-1]["status"]
    assert status["code"] == 3 and status["message"] == "invalidArguments"
    assert "resouce_id" in status["description"]
    assert outcome.ended and outcome.end_error is None


async def test_legacy_flat_execute_is_accepted(volt, client):
    """volt_client_web 0.1.14 sends the pre-oneof Execute request: fields at top level."""
    wire, session, _ = client
    request = {"database_id": volt.sample["database_id"], "statement": "SELECT 40 + 2 AS answer"}
    outcome = await wire.call(session, "/tdx.volt_api.data.v1.SqliteDatabaseAPI/Execute", request)
    assert outcome.end_error is None
    assert outcome.responses[-1] == {"row": {"column": [{"integer": "42"}]}}


async def test_handler_status_error_is_a_payload_then_a_normal_end(client):
    wire, session, _ = client
    outcome = await wire.call(session, GET_RESOURCE, {"resource_id": "no-such-resource"})
    assert outcome.responses[-1]["status"]["message"]
    assert outcome.ended and outcome.end_error is None


async def test_frames_for_an_ended_call_are_ignored(client):
    wire, session, config = client
    home = config["credential"]["client_id"]
    first = await wire.start(session, GET_RESOURCE, json.dumps({"resource_id": home}))
    assert (await wire.finish(session, first)).ended  # the server ended it without our half-close
    await wire.half_close(session, first)  # what v1 clients send after the server's method_end
    await wire.send(session, first, {"resource_id": home})
    again = await wire.call(session, GET_RESOURCE, {"resource_id": home})
    assert again.ended and again.responses[-1]["resource"]["id"] == home
    assert wire.unclaimed(session.generation, first) == []  # nothing came back for the ended call


async def test_disconnect_mid_call_cancels_the_handler(volt, configs):
    wire_id = volt.sample["wire_id"]
    for generation in GENERATIONS:
        wire = await Wire.open(ws_url(configs[generation]))
        session = session_for(configs[generation])
        await wire.start(session, SUBSCRIBE_WIRE, {"wire_id": wire_id})
        for _ in range(100):
            if volt.services.wires.subscriber_count(wire_id):
                break
            await asyncio.sleep(0.02)
        assert volt.services.wires.subscriber_count(wire_id) == 1
        await wire.close()
        for _ in range(100):
            if not volt.services.wires.subscriber_count(wire_id):
                break
            await asyncio.sleep(0.02)
        assert volt.services.wires.subscriber_count(wire_id) == 0, generation
        assert volt._server.connection_count == 0


async def test_many_calls_interleave_on_one_connection(client):
    wire, session, config = client
    home = config["credential"]["client_id"]
    ids = [await wire.start(session, GET_RESOURCE, json.dumps({"resource_id": home})) for _ in range(20)]
    outcomes = [await wire.finish(session, call_id) for call_id in ids]
    assert all(o.responses[-1]["resource"]["id"] == home for o in outcomes)
