"""Faults: a killed server or a cut socket fails every pending call fast, and the client recovers.

Real faults only: the server is a ``volt-data serve`` subprocess killed with
SIGKILL, or the socket runs through a loopback proxy whose TCP connections are
aborted (or black-holed) mid-stream. Every pending call must end within
``FAIL_WITHIN`` seconds with :class:`ConnectionLostError`; the next call opens
a new connection by itself.
"""
from __future__ import annotations

import asyncio
import base64
import time

import pytest

from tests.reliability.harness import CuttableProxy, VoltProcess, via
from volt_data import VoltClient
from volt_data.data.readers import read_sql_arrow_async
from volt_data.errors import CallTimeoutError, ConnectionLostError, VoltError

FAIL_WITHIN = 2.0
#: A query that streams for many seconds: five million generated rows.
LONG_QUERY = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 5000000) "
              "SELECT i, 'row ' || i AS label FROM n")


async def _failures_after(fault, pending: list[asyncio.Future]) -> tuple[float, list[BaseException]]:
    """Inject ``fault`` and return (seconds until every pending call failed, their errors)."""
    await asyncio.sleep(0.3)  # the calls are streaming now
    assert not any(task.done() for task in pending), [t for t in pending if t.done()]
    started = time.monotonic()
    fault()
    done, still = await asyncio.wait(pending, timeout=10)
    elapsed = time.monotonic() - started
    for task in still:
        task.cancel()
    assert not still, f"{len(still)} call(s) still pending 10 s after the fault"
    return elapsed, [task.exception() for task in done]


async def _pending_calls(client: VoltClient, database_id: str, wire_id: str) -> list[asyncio.Future]:
    """A read_sql in mid-stream, a wire subscription and a client-streaming publish (upload)."""
    subscription = await client.subscribe_wire({"wire_id": wire_id})
    upload = await client.publish_wire({"wire_id": wire_id})
    await upload.send({"chunk": base64.b64encode(b"first chunk").decode()})
    return [
        asyncio.ensure_future(read_sql_arrow_async(LONG_QUERY, database_id, client=client)),
        asyncio.ensure_future(subscription.wait()),
        asyncio.ensure_future(upload.wait()),
    ]


def _assert_connection_lost(errors: list[BaseException]) -> None:
    for error in errors:
        assert isinstance(error, ConnectionLostError), repr(error)
        assert isinstance(error, VoltError)
        assert "connection" in str(error) and ("lost" in str(error) or "closed" in str(error)), str(error)


# ---------------------------------------------------------------------------- socket cut

@pytest.fixture
async def proxy(local_volt):
    running = await CuttableProxy(local_volt.port).start()
    yield running
    await running.close()


async def test_cut_socket_fails_every_pending_call_fast_then_reconnects(local_volt, sample, owner_config, proxy):
    async with VoltClient(via(owner_config, proxy.port)) as client:
        pending = await _pending_calls(client, sample["database_id"], sample["wire_id"])
        elapsed, errors = await _failures_after(proxy.cut, pending)
        assert elapsed < FAIL_WITHIN
        _assert_connection_lost(errors)
        assert "3 call(s) were open" in " ".join(map(str, errors))
        # the next call opens a new connection by itself
        home = owner_config["credential"]["client_id"]
        assert (await client.get_resource({"resource_id": home}, timeout=5))["resource"]["id"] == home
        table = await read_sql_arrow_async("SELECT count(*) AS n FROM sensors", sample["database_id"], client=client)
        assert table.column("n")[0].as_py() > 0


async def test_a_call_on_a_cut_connection_that_was_idle_reconnects(local_volt, owner_config, proxy):
    async with VoltClient(via(owner_config, proxy.port)) as client:
        home = owner_config["credential"]["client_id"]
        await client.get_resource({"resource_id": home})
        proxy.cut()
        await asyncio.sleep(0.1)
        assert not client.is_connected
        assert (await client.get_resource({"resource_id": home}, timeout=5))["resource"]["id"] == home
        assert client.is_connected


async def test_half_finished_transaction_rolls_back_when_the_socket_is_cut(local_volt, owner_config, proxy):
    async with VoltClient(owner_config) as direct:
        created = await direct.create_database({"name": f"rollback-{owner_config['credential']['key'][40:48]}"})
        database_id = created["resource"]["id"]
        await read_sql_arrow_async("CREATE TABLE IF NOT EXISTS t (x INTEGER)", database_id, client=direct)
        async with VoltClient(via(owner_config, proxy.port)) as client:
            call = await client.execute({"start": {"database_id": database_id, "transaction": True,
                                                   "statement": "INSERT INTO t VALUES (1), (2), (3)"}})
            async for response in call:  # the INSERT ran inside the open transaction
                assert response.get("affected_rows") == 3
                break
            proxy.cut()
            with pytest.raises(ConnectionLostError):
                await call.wait(FAIL_WITHIN)
        # the server rolled back: nothing was committed and the database is not locked
        for _ in range(50):
            if not _open_server_calls(local_volt):
                break
            await asyncio.sleep(0.05)
        count = await read_sql_arrow_async("SELECT count(*) AS n FROM t", database_id, client=direct)
        assert count.column("n")[0].as_py() == 0
        await read_sql_arrow_async("INSERT INTO t VALUES (9)", database_id, client=direct, timeout=5)
        count = await read_sql_arrow_async("SELECT count(*) AS n FROM t", database_id, client=direct)
        assert count.column("n")[0].as_py() == 1


# ---------------------------------------------------------------------------- timeouts

def _open_server_calls(volt) -> int:
    return sum(len(connection.calls) for connection in volt._server._connections)


async def test_unary_timeout_on_a_stalled_network(local_volt, owner_config, proxy):
    async with VoltClient(via(owner_config, proxy.port)) as client:
        home = owner_config["credential"]["client_id"]
        proxy.stall()
        started = time.monotonic()
        with pytest.raises(CallTimeoutError):
            await client.get_resource({"resource_id": home}, timeout=0.5)
        assert time.monotonic() - started < 1.5
        assert client._connection.open_calls == 0  # the timed-out call is gone locally too
        started = time.monotonic()
        await client.close()  # no close handshake can complete: bounded, not websockets' 10 s
        assert time.monotonic() - started < 3


async def test_read_sql_timeout_on_a_stalled_network(local_volt, sample, owner_config, proxy):
    async with VoltClient(via(owner_config, proxy.port)) as client:
        await read_sql_arrow_async("SELECT 1", sample["database_id"], client=client)  # resolves and warms up
        proxy.stall()
        started = time.monotonic()
        with pytest.raises(CallTimeoutError):
            await read_sql_arrow_async(LONG_QUERY, sample["database_id"], client=client, timeout=0.5)
        assert time.monotonic() - started < 1.5
        proxy.cut()  # (closing on the stalled network is bounded too, see the unary test; skip the wait)


async def test_call_wait_timeout_cancels_a_paged_execute_on_the_server(local_volt, sample, client):
    before = _open_server_calls(local_volt)
    call = await client.execute({"start": {"database_id": sample["database_id"], "page_size": 1,
                                           "statement": "SELECT * FROM readings"}})
    with pytest.raises(CallTimeoutError):
        await call.wait(0.5)  # the Volt waits for 'next' after one row: never finishes by itself
    assert call.done
    for _ in range(40):
        if _open_server_calls(local_volt) <= before:
            break
        await asyncio.sleep(0.05)
    assert _open_server_calls(local_volt) <= before, "the server still runs the timed-out call"


async def test_call_wait_timeout_cancels_a_subscription_without_publisher(local_volt, client):
    saved = await client.save_wire({"create": True, "resource": {"name": f"quiet-{time.monotonic_ns()}"}})
    wire_id = saved["resource"]["id"]
    call = await client.subscribe_wire({"wire_id": wire_id})
    for _ in range(40):
        if local_volt.services.wires.subscriber_count(wire_id):
            break
        await asyncio.sleep(0.05)
    assert local_volt.services.wires.subscriber_count(wire_id) == 1
    with pytest.raises(CallTimeoutError):
        await call.wait(0.5)
    for _ in range(40):
        if not local_volt.services.wires.subscriber_count(wire_id):
            break
        await asyncio.sleep(0.05)
    assert local_volt.services.wires.subscriber_count(wire_id) == 0, "the subscription still runs on the server"


# ---------------------------------------------------------------------------- server killed

async def test_killed_server_fails_calls_fast_committed_data_survives_and_client_reconnects(tmp_path):
    volt = VoltProcess(tmp_path / "volt")
    config = await asyncio.to_thread(volt.start)
    try:
        async with VoltClient(config) as client:
            created = await client.create_database({"name": "durable"})
            database_id = created["resource"]["id"]
            await read_sql_arrow_async("CREATE TABLE kept (x INTEGER)", database_id, client=client)
            await read_sql_arrow_async("INSERT INTO kept VALUES (1), (2), (3)", database_id, client=client)
            samples = await read_sql_arrow_async("SELECT 1", "sample", client=client)  # the sample database exists
            assert samples.num_rows == 1
            wire_id = (await client.save_wire({"create": True, "resource": {"name": "w"}}))["resource"]["id"]
            pending = await _pending_calls(client, database_id, wire_id)
            elapsed, errors = await _failures_after(volt.kill, pending)
            assert elapsed < FAIL_WITHIN
            _assert_connection_lost(errors)
            with pytest.raises(ConnectionLostError, match="cannot connect"):
                await client.get_resource({"resource_id": client.config.client_id}, timeout=5)

            await asyncio.to_thread(volt.start)  # same data dir, same port
            kept = await read_sql_arrow_async("SELECT x FROM kept ORDER BY x", database_id, client=client, timeout=10)
            assert kept.column("x").to_pylist() == [1, 2, 3]
    finally:
        volt.kill()


async def test_a_resuming_subscription_survives_a_server_restart(tmp_path):
    """subscribe_wire(resume=True): after the Volt is killed and restarted, chunks flow again."""
    volt = VoltProcess(tmp_path / "volt")
    config = await asyncio.to_thread(volt.start)
    try:
        async with VoltClient(config) as subscriber, VoltClient(config) as publisher:
            wire_id = (await publisher.save_wire({"create": True, "resource": {"name": "resume"}}))["resource"]["id"]
            subscription = await subscriber.subscribe_wire({"wire_id": wire_id}, resume=True)
            received, resumed = [], asyncio.Event()
            subscription.on("data", lambda response: received.append(base64.b64decode(response["chunk"])))
            subscription.on("resumed", resumed.set)

            async def publish(text: str) -> None:
                call = await publisher.publish_wire({"wire_id": wire_id})
                await call.send({"chunk": text.encode()})
                await call.end()
                await call.wait(10)

            async def arrived(text: str) -> None:
                while text.encode() not in received:
                    await asyncio.sleep(0.02)

            await asyncio.sleep(0.2)  # the subscription is registered on the Volt
            await publish("before")
            await asyncio.wait_for(arrived("before"), 5)

            volt.kill()
            await asyncio.sleep(0.5)
            assert not subscription.done  # a lost connection does not end it
            await asyncio.to_thread(volt.start)  # same data dir and port
            await asyncio.wait_for(resumed.wait(), 15)
            await asyncio.sleep(0.2)
            await publish("after")  # the publisher's client reconnects by itself
            await asyncio.wait_for(arrived("after"), 5)
            assert subscription.resumes == 1

            await subscription.send({"stop": True})
            await asyncio.wait_for(subscription.wait(), 5)
            assert received == [b"before", b"after"]
    finally:
        volt.kill()


async def test_resume_is_only_for_subscriptions(client):
    from volt_data import RequestError

    with pytest.raises(RequestError, match="only for SubscribeWire"):
        await client.execute({"start": {"statement": "SELECT 1"}}, resume=True)
