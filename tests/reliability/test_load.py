"""Load: many clients, many calls in flight, wire fan-out — every row and message checked.

Marked ``slow`` (CI runs it; ``-m "not slow"`` skips it). Each test prints the
figures GUARANTEES.md quotes (``-s`` shows them).
"""
from __future__ import annotations

import asyncio
import base64
import gc
import sqlite3
import time

import pytest

from tests.reliability.harness import rss_bytes
from volt_data import VoltClient

pytestmark = pytest.mark.slow

CLIENTS, QUERIES = 50, 20
SUBSCRIBERS, PUBLISHERS, MESSAGES = 10, 2, 10_000


@pytest.fixture
def owner_config(local_volt) -> dict:
    """Load runs once, on the current generation (v2): both share the transport and the handlers."""
    return local_volt.client_config(protocol="v2")


def _expected(local_volt, database_id: str, statement: str) -> list[tuple]:
    with sqlite3.connect(local_volt.services.sqlite.path_for(database_id)) as direct:
        return direct.execute(statement).fetchall()


async def _one_client(config: dict, database_id: str, statements: list[str]) -> list[list[tuple]]:
    async with VoltClient(config) as client:
        results = []
        for statement in statements:
            rows = await client.sql_execute_json({"start": {"database_id": database_id, "statement": statement}})
            results.append([tuple(row.values()) for row in rows])
        return results


async def _round(local_volt, sample, config) -> tuple[float, int]:
    statements = [f"SELECT id, sensor_id, temperature FROM readings WHERE id % 50 = {n} ORDER BY id" for n in range(QUERIES)]
    expected = [_expected(local_volt, sample["database_id"], s) for s in statements]
    started = time.perf_counter()
    results = await asyncio.gather(*(_one_client(config, sample["database_id"], statements) for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - started
    rows = 0
    for per_client in results:
        assert per_client == expected  # row for row, in order
        rows += sum(map(len, per_client))
    return elapsed, rows


async def test_50_clients_x_20_queries_row_for_row_and_memory_stays_flat(local_volt, sample, owner_config):
    gc.collect()
    baseline = rss_bytes()
    elapsed, rows = await _round(local_volt, sample, owner_config)
    gc.collect()
    after_first = rss_bytes()
    await _round(local_volt, sample, owner_config)  # identical second round: must not grow
    gc.collect()
    after_second = rss_bytes()
    growth = after_second - after_first
    print(f"\n{CLIENTS} clients x {QUERIES} queries (server and clients in one process): "
          f"{CLIENTS * QUERIES / elapsed:.0f} queries/s, {rows / elapsed:.0f} rows/s; "
          f"RSS {baseline / 2**20:.0f} -> {after_first / 2**20:.0f} -> {after_second / 2**20:.0f} MiB")
    assert growth < 32 * 2**20, f"RSS grew {growth / 2**20:.1f} MiB in a repeated identical round"
    assert sum(len(c.calls) for c in local_volt._server._connections) == 0


async def test_one_client_with_500_calls_in_flight(local_volt, sample, owner_config):
    async with VoltClient(owner_config) as client:
        await _500_calls(client, sample)


async def _500_calls(client: VoltClient, sample: dict) -> None:
    home = client.config.client_id
    started = time.perf_counter()
    results = await asyncio.gather(
        *(client.sql_execute_json({"start": {"database_id": sample["database_id"], "statement": f"SELECT {n} AS n"}})
          for n in range(250)),
        *(client.get_resource({"resource_id": home}) for _ in range(250)),
    )
    elapsed = time.perf_counter() - started
    assert [rows[0]["n"] for rows in results[:250]] == list(range(250))
    assert all(response["resource"]["id"] == home for response in results[250:])
    assert client._connection.open_calls == 0
    print(f"\n500 calls in flight on one connection: {500 / elapsed:.0f} calls/s")


async def _subscribe(config: dict, wire_id: str, ready: asyncio.Event, ready_count: list) -> list[bytes]:
    async with VoltClient(config) as client:
        call = await client.subscribe_wire({"wire_id": wire_id})
        received: list[bytes] = []
        ready_count.append(1)
        if len(ready_count) == SUBSCRIBERS:
            ready.set()
        async for response in call:
            chunk = base64.b64decode(response["chunk"])
            if chunk == b"done":
                await call.cancel()
                break
            received.append(chunk)
        return received


async def _publish(config: dict, wire_id: str, name: str, count: int) -> None:
    async with VoltClient(config) as client:
        call = await client.publish_wire({"wire_id": wire_id})
        for sequence in range(count):
            await call.send({"chunk": base64.b64encode(f"{name}:{sequence}".encode()).decode()})
        await call.end()
        await call.wait(120)  # pacing under a loaded 2-core machine: order and completeness are the point


@pytest.mark.timeout(300)
async def test_10_subscribers_get_every_message_of_2_publishers_in_order(local_volt, owner_config):
    async with VoltClient(owner_config) as owner:
        wire_id = (await owner.save_wire({"create": True, "resource": {"name": f"load-{time.monotonic_ns()}"}}))[
            "resource"]["id"]
        ready, ready_count = asyncio.Event(), []
        subscribers = [asyncio.ensure_future(_subscribe(owner_config, wire_id, ready, ready_count))
                       for _ in range(SUBSCRIBERS)]
        await asyncio.wait_for(ready.wait(), 10)
        while local_volt.services.wires.subscriber_count(wire_id) < SUBSCRIBERS:
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        per_publisher = MESSAGES // PUBLISHERS
        await asyncio.gather(*(_publish(owner_config, wire_id, f"p{n}", per_publisher) for n in range(PUBLISHERS)))
        await _publish(owner_config, wire_id, "x", 0)  # an empty publish call, then the end marker
        done = await owner.publish_wire({"wire_id": wire_id})
        await done.send({"chunk": base64.b64encode(b"done").decode()})
        await done.end()
        received = await asyncio.wait_for(asyncio.gather(*subscribers), 60)
        elapsed = time.perf_counter() - started
    for chunks in received:
        assert len(chunks) == MESSAGES, f"a subscriber got {len(chunks)} of {MESSAGES}"
        for n in range(PUBLISHERS):
            sequence = [int(c.split(b":")[1]) for c in chunks if c.startswith(f"p{n}:".encode())]
            assert sequence == list(range(per_publisher))  # nothing lost, publisher order kept
    print(f"\n{SUBSCRIBERS} subscribers x {MESSAGES} messages from {PUBLISHERS} publishers: "
          f"{SUBSCRIBERS * MESSAGES / elapsed:.0f} deliveries/s")
