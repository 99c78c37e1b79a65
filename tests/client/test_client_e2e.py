"""The client against a real local Volt over real websockets, both generations."""
from __future__ import annotations

import asyncio
import base64
import re
import sqlite3

import orjson
import pytest

from volt_data import CallError, ConnectionLostError, RequestError, VoltClient
from volt_data.schema import MethodInfo


async def test_unary_in_all_three_naming_styles(client, owner_config):
    home = owner_config["credential"]["client_id"]
    camel = await client.getResource({"resourceId": home})
    pascal = await client.GetResource({"resource_id": home})
    snake = await client.get_resource({"resource_id": home})
    assert camel == pascal == snake
    assert camel["resource"]["id"] == home and "volt:folder" in camel["resource"]["kind"]


async def test_status_error_carries_code_message_description(client):
    with pytest.raises(CallError) as error:
        await client.get_resource({"resource_id": "no-such-resource"})
    assert error.value.kind == "status" and error.value.code == 5 and error.value.message == "notFound"
    assert "no-such-resource" in error.value.description
    # the connection stays usable after an error
    assert (await client.get_resource({"resource_id": client.config.client_id}))["resource"]


async def test_end_error_for_a_method_the_volt_does_not_know(client):
    bogus = MethodInfo(
        service="tdx.volt_api.volt.v1.VoltAPI",
        name="NoSuchMethod",
        path="/tdx.volt_api.volt.v1.VoltAPI/NoSuchMethod",
        request_type="tdx.volt_api.volt.v1.GetResourceRequest",
        response_type="tdx.volt_api.volt.v1.GetResourceResponse",
        client_streaming=False,
        server_streaming=False,
    )
    with pytest.raises(CallError) as error:
        await client.unary_call(bogus, {})
    assert error.value.kind == "end" and "NoSuchMethod" in str(error.value)


async def test_unimplemented_method_is_a_clear_error_not_a_hang(client):
    with pytest.raises(CallError, match="unimplemented") as error:
        await asyncio.wait_for(client.send_email({}), 5)
    assert error.value.code == 12


async def test_the_volt_refuses_an_unknown_caller_and_says_so(owner_config, generation):
    forged = dict(owner_config, credential=dict(owner_config["credential"], key=_fresh_key(generation)))
    async with VoltClient(forged) as intruder:
        with pytest.raises(CallError) as error:
            await asyncio.wait_for(intruder.get_resource({"resource_id": owner_config["credential"]["client_id"]}), 5)
    # v2 refuses in the frame envelope; v1 with an encrypted method_end the old client can show
    assert error.value.kind == ("envelope" if generation == "v2" else "end")
    assert re.search("unknown client key|does not verify", str(error.value))


def _fresh_key(generation: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if generation == "v1":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


async def test_bad_requests_are_refused_before_sending(client):
    with pytest.raises(RequestError, match="resourceIdd") as error:
        await client.get_resource({"resourceIdd": "x"})
    assert error.value.field == "resourceIdd"
    with pytest.raises(RequestError, match="page_size"):
        await client.execute({"start": {"statement": "SELECT 1", "page_size": "ten"}})
    with pytest.raises(RequestError, match="unknown Volt method"):
        await client.call("getResorce", {})
    assert client._connection.open_calls == 0  # nothing was left open


async def test_bidi_execute_with_the_legacy_flat_request(client, sample):
    call = await client.sqlExecute({"database_id": sample["database_id"], "statement": "SELECT 1 AS one, 'a' AS two"})
    responses = [response async for response in call]
    assert responses[0]["header"]["column"][0] == {"name": "one", "type": "DATA_TYPE_INTEGER"}
    assert responses[1]["row"]["column"] == [{"integer": "1"}, {"text": "a"}]


async def test_sql_execute_json_matches_sqlite(client, sample, local_volt):
    rows = await client.SqlExecuteJSON(
        {"database_id": sample["database_id"], "statement": f"SELECT * FROM {sample['table']} ORDER BY rowid LIMIT 50"}
    )
    path = local_volt.services.sqlite.path_for(sample["database_id"])
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        expected = [dict(r) for r in db.execute(f"SELECT * FROM {sample['table']} ORDER BY rowid LIMIT 50")]
    assert len(rows) == len(expected) == 50
    for got, want in zip(rows, expected):
        for key, value in want.items():
            assert got[key] == value or (value != value and got[key] != got[key])  # NaN-safe


async def test_sql_error_carries_sqlites_message(client, sample):
    call = await client.execute({"start": {"database_id": sample["database_id"], "statement": "SELECT * FROM nope"}})
    with pytest.raises(CallError, match="no such table: nope") as error:
        async for _ in call:
            pass
    assert error.value.code == 3


async def test_wire_publish_and_subscribe_with_handlers(client, local_volt):
    wire = await client.save_wire({"resource": {"name": "e2e-wire"}, "create": True,
                                   "create_in_parent_id": client.config.client_id})
    wire_id = wire["resource"]["id"]
    received, ended = [], asyncio.Event()
    sub = await client.subscribeWire({"wire_id": wire_id})

    @sub.on("data")
    def on_data(response):
        received.append(base64.b64decode(response["chunk"]))

    @sub.on("end")
    def on_end():
        ended.set()

    sub.on("error", lambda error: received.append(error))
    await asyncio.sleep(0.1)  # let the subscription register before publishing
    pub = await client.publishWire({"wire_id": wire_id})
    for i in range(20):
        await pub.send({"chunk": f"m{i}".encode()})
    await pub.end()
    await pub.wait(5)
    for _ in range(100):
        if len(received) == 20:
            break
        await asyncio.sleep(0.02)
    await sub.send({"stop": True})
    await asyncio.wait_for(ended.wait(), 5)
    assert received == [f"m{i}".encode() for i in range(20)]


async def test_client_streaming_upload_then_server_streaming_download(client):
    saved = await client.save_resource({"resource": {"name": "notes.txt", "kind": ["volt:file"]},
                                        "create": True, "create_in_parent_id": client.config.client_id})
    file_id = saved["resource"]["id"]
    content = bytes(range(256)) * 1000
    upload = await client.upload_file()
    await upload.send({"start": {"resource_id": file_id, "truncate": True}})
    for offset in range(0, len(content), 65536):
        await upload.send({"block": content[offset:offset + 65536]})
    await upload.end()
    await upload.wait(10)
    download = await client.download_file({"resource_id": file_id})
    blocks = [base64.b64decode(r["block"]) async for r in download]
    assert b"".join(blocks) == content


async def test_one_hundred_calls_in_flight_on_one_socket(client, sample):
    async def query(i: int):
        call = await client.execute({"start": {"database_id": sample["database_id"], "statement": f"SELECT {i} AS n"}})
        rows = [r async for r in call if "row" in r]
        return int(rows[0]["row"]["column"][0]["integer"])

    unary = [client.get_resource({"resource_id": client.config.client_id}) for _ in range(50)]
    streams = [query(i) for i in range(50)]
    results = await asyncio.wait_for(asyncio.gather(*unary, *streams), 30)
    assert all(r["resource"]["id"] == client.config.client_id for r in results[:50])
    assert results[50:] == list(range(50))
    assert client._connection.open_calls == 0


async def test_server_going_away_fails_open_calls_quickly(local_volt, generation):
    from volt_data.local import LocalVolt

    async with LocalVolt() as volt:
        config = volt.client_config(protocol=generation)
        info = volt.load_sample()
        async with VoltClient(config) as own:
            sub = await own.subscribe_wire({"wire_id": info["wire_id"]})
            await volt.astop()
            with pytest.raises(ConnectionLostError, match="call"):
                await asyncio.wait_for(sub.wait(), 2)


def test_sync_facade_in_a_script(owner_config, sample):
    import volt_data

    with volt_data.connect(owner_config) as volt:
        home = volt.get_resource({"resource_id": owner_config["credential"]["client_id"]})
        assert home["resource"]["id"] == owner_config["credential"]["client_id"]
        call = volt.execute({"start": {"database_id": sample["database_id"], "statement": "SELECT 2 AS n"}})
        assert [r for r in call if "row" in r][0]["row"]["column"] == [{"integer": "2"}]
        with pytest.raises(CallError):
            volt.get_resource({"resource_id": "missing"})


async def test_sync_facade_while_an_event_loop_runs(owner_config):
    """As in Jupyter: a loop is running in this thread, and blocking calls still work."""
    import volt_data

    assert asyncio.get_running_loop().is_running()
    with volt_data.connect(owner_config) as volt:
        assert volt.getResource({"resourceId": owner_config["credential"]["client_id"]})["resource"]


async def test_handlers_registered_after_await_see_every_event(client, sample):
    call = await client.sqlExecute({"database_id": sample["database_id"], "statement": "SELECT 1 UNION ALL SELECT 2"})
    await asyncio.sleep(0.2)  # the whole answer has arrived before anyone listens
    seen, done = [], asyncio.Event()
    call.on("data", seen.append)
    call.on("end", done.set)
    await asyncio.wait_for(done.wait(), 5)
    assert [list(r) for r in seen] == [["header"], ["row"], ["row"]]
