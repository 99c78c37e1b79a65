"""Wires fan-out and the file API of the local Volt, plus the sample data."""
from __future__ import annotations

import asyncio
import base64
import sqlite3

import orjson
from service_harness import OTHER_WRITER, OWNER, READER, WRITER, InProcessCall, call_method, serve, status_code

from volt_data.local.call import NOT_FOUND, PERMISSION_DENIED
from volt_data.local.services import VoltServices
from volt_data.local.services.wires import Subscription

WIRE = "/tdx.volt_api.volt.v1.WireAPI/"
FILE = "/tdx.volt_api.volt.v1.FileAPI/"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_wire(services, identity=WRITER) -> str:
    [saved] = asyncio.run(call_method(services, WIRE + "SaveWire", identity, {"resource": {"name": "w"}, "create": True}))
    assert saved["resource"]["kind"] == ["volt:wire"]
    return saved["resource"]["id"]


def test_fan_out_keeps_order_and_stop_ends(services):
    wire_id = make_wire(services)
    services.store.grant(wire_id, READER.id, "read")

    async def scenario():
        subscribers = [InProcessCall(WIRE + "SubscribeWire", who) for who in (READER, OWNER)]
        tasks = []
        for call in subscribers:
            call.push({"wire_id": wire_id})
            tasks.append(asyncio.create_task(serve(services.handler_for(WIRE + "SubscribeWire"), call)))
        while services.wires.subscriber_count(wire_id) < 2:
            await asyncio.sleep(0.01)
        chunks = [f"m{i}".encode() for i in range(20)]
        published = await call_method(services, WIRE + "PublishWire", WRITER, {"wire_id": wire_id},
                                      *({"chunk": b64(c)} for c in chunks))
        assert published == [{}]
        for call in subscribers:
            await call.wait_for(20)
            call.push({"stop": True})
        await asyncio.wait_for(asyncio.gather(*tasks), 3)
        assert services.wires.subscriber_count(wire_id) == 0
        return [[base64.b64decode(r["chunk"]) for r in call.responses] for call in subscribers]

    for received in asyncio.run(scenario()):
        assert received == [f"m{i}".encode() for i in range(20)]


def test_subscribe_ends_on_half_close_and_checks_access(services):
    wire_id = make_wire(services)
    assert status_code(asyncio.run(call_method(services, WIRE + "SubscribeWire", READER, {"wire_id": "nope"}))) == NOT_FOUND
    denied = asyncio.run(call_method(services, WIRE + "SubscribeWire", OTHER_WRITER, {"wire_id": wire_id}))
    assert status_code(denied) == PERMISSION_DENIED
    assert asyncio.run(call_method(services, WIRE + "SubscribeWire", WRITER, {"wire_id": wire_id})) == []


def test_publish_needs_write_access(services):
    wire_id = make_wire(services)
    services.store.grant(wire_id, "*", "read")
    for identity in (READER, OTHER_WRITER):
        responses = asyncio.run(call_method(services, WIRE + "PublishWire", identity, {"wire_id": wire_id}))
        assert status_code(responses) == PERMISSION_DENIED
    services.store.grant(wire_id, OTHER_WRITER.id, "write")
    assert asyncio.run(call_method(services, WIRE + "PublishWire", OTHER_WRITER, {"wire_id": wire_id, "chunk": "AA=="})) == [{}]


def test_slow_subscriber_drops_oldest():
    async def scenario():
        subscription = Subscription("w", size=3)
        for index in range(5):
            subscription.offer(bytes([index]))
        return subscription.dropped, [subscription.queue.get_nowait() for _ in range(3)]
    assert asyncio.run(scenario()) == (2, [b"\x02", b"\x03", b"\x04"])


def test_upload_get_and_download_file(services):
    [saved] = asyncio.run(call_method(services, "/tdx.volt_api.volt.v1.VoltAPI/SaveResource", WRITER,
                                      {"resource": {"name": "data.csv", "kind": ["volt:file"]}, "create": True}))
    resource_id = saved["resource"]["id"]
    content = bytes(range(256)) * 600  # 150 KiB: more than one download block
    blocks = [content[i:i + 50_000] for i in range(0, len(content), 50_000)]
    acks = asyncio.run(call_method(services, FILE + "UploadFile", WRITER, {"start": {"resource_id": resource_id, "truncate": True}},
                                   *({"block": b64(block)} for block in blocks)))
    assert acks == [{"ack": n} for n in range(1, len(blocks) + 1)]
    [info] = asyncio.run(call_method(services, FILE + "GetFile", WRITER, {"resource_id": resource_id}))
    assert info["file"]["size"] == str(len(content)) and info["file"]["media_type"] == "text/csv"
    downloaded = asyncio.run(call_method(services, FILE + "DownloadFile", WRITER, {"resource_id": resource_id}))
    assert len(downloaded) == 3
    assert b"".join(base64.b64decode(r["block"]) for r in downloaded) == content
    assert services.store.get(resource_id).size == len(content)
    denied = asyncio.run(call_method(services, FILE + "DownloadFile", OTHER_WRITER, {"resource_id": resource_id}))
    assert status_code(denied) == PERMISSION_DENIED
    services.store.delete(resource_id)
    assert not services.files.path_for(resource_id).exists()


def test_sample_is_idempotent_shared_and_publishes(tmp_path):
    async def scenario():
        services = VoltServices(tmp_path, "volt-root")
        first = services.load_sample(OWNER)
        assert services.load_sample(OWNER) == first and first["publishing"]
        call = InProcessCall(WIRE + "SubscribeWire", READER)
        call.push({"wire_id": first["wire_id"]})
        task = asyncio.create_task(serve(services.handler_for(WIRE + "SubscribeWire"), call))
        await call.wait_for(2, timeout=3)
        call.push({"stop": True})
        await task
        counts = await call_method(services, "/tdx.volt_api.data.v1.SqliteDatabaseAPI/Execute", READER, {"start": {
            "database_id": first["database_id"], "statement": "SELECT count(*) FROM readings"}})
        denied = await call_method(services, "/tdx.volt_api.data.v1.SqliteDatabaseAPI/Execute", WRITER, {"start": {
            "database_id": first["database_id"], "statement": "DELETE FROM readings"}})
        await services.close()
        return first, call.responses, counts, denied

    first, chunks, counts, denied = asyncio.run(scenario())
    reading = orjson.loads(base64.b64decode(chunks[0]["chunk"]))
    assert set(reading) >= {"sensor", "ts", "temperature", "humidity"}
    assert counts[1] == {"row": {"column": [{"integer": "5000"}]}}
    assert status_code(denied) == PERMISSION_DENIED
    again = VoltServices(tmp_path, "volt-root")
    assert again.load_sample(OWNER)["database_id"] == first["database_id"]
    with sqlite3.connect(again.sqlite.path_for(first["database_id"])) as connection:
        extremes = connection.execute("SELECT min(int_value), max(int_value) FROM value_types "
                                      "WHERE typeof(int_value) = 'integer'").fetchone()
        assert extremes == (-9223372036854775808, 9223372036854775807)
        nulls = connection.execute("SELECT count(*) FROM value_types WHERE label = 'all null' AND int_value IS NULL "
                                   "AND real_value IS NULL AND text_value IS NULL AND blob_value IS NULL").fetchone()
        assert nulls == (1,)
    asyncio.run(again.close())
