"""Rows sent in batches (``send_many``), end to end over real sockets, checked with sqlite3.

The local Volt seals whole batches of result rows and writes their websocket
frames itself; these tests hold it to what one frame per ``send`` gave: every
row once and in order for both generations, paging that waits for ``next``,
``end`` and disconnects that stop the producer, SQL errors mid-stream, every
websocket length form, and a producer paced by a client that stops reading.
"""
from __future__ import annotations

import asyncio
import base64
import json
import random
import sqlite3
from types import SimpleNamespace

import pytest

from tests.local.server_harness import GET_RESOURCE, SUBSCRIBE_WIRE, Wire, session_for
from volt_data import CallError, VoltClient
from volt_data.local.server import SEND_MANY_CHUNK_BYTES, VoltServer
from volt_data.local.services import VoltServices
from volt_data.local.state import VoltState
from volt_data.protocol.envelope import parse_inner
from volt_data.protocol.session import ENVELOPE_ERROR

EXECUTE = "/tdx.volt_api.data.v1.SqliteDatabaseAPI/Execute"
ROWS = 6_000
ALL_ROWS = "SELECT id, t, r, b FROM t ORDER BY id"


def fill(path) -> None:
    """``t``: every storage class, NULLs, quotes, backslashes, non-ASCII, long texts."""
    rng = random.Random(11)
    texts = ["plain", "", 'quote " and backslash \\', 'a","b', "é ü 中文 😀", "\n\t\x01", "x" * 300]
    reals = [-0.0, float("inf"), float("-inf"), -1e-300, 1.5, 12345.678]
    rows = []
    for i in range(ROWS):
        text = None if i % 11 == 0 else texts[i % len(texts)] + str(i)
        if i < 500 and i % 8 == 4:
            text = '",' + str(i)  # forces the one-by-one escaping path for its batch
        real = None if i % 13 == 0 else (rng.random() * 1e6 if i % 2 else reals[i % len(reals)])
        blob = rng.randbytes(i % 40) if i % 3 == 0 else None
        rows.append((i, text, real, blob))
    # Frames beyond 65535 bytes (64-bit websocket length) and just under it.
    rows[100] = (100, "L" * 70_000, 1.0, None)
    rows[4321] = (4321, "M" * 48_000, None, b"\0" * 1000)
    connection = sqlite3.connect(str(path), isolation_level=None)
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, t TEXT, r REAL, b BLOB)")
    connection.execute("BEGIN")
    connection.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    connection.execute("COMMIT")
    connection.close()


def expected_rows(path, sql: str = ALL_ROWS) -> list[tuple]:
    with sqlite3.connect(str(path)) as connection:
        return [tuple(row) for row in connection.execute(sql)]


def cell_value(cell: dict):
    (kind, value), = cell.items()
    if kind == "integer":
        return int(value)
    if kind == "real":
        return float(value) if isinstance(value, str) else float(value)
    if kind == "blob":
        return base64.b64decode(value)
    if kind == "null":
        return None
    return value


def row_values(response: dict) -> tuple:
    return tuple(cell_value(cell) for cell in response["row"]["column"])


def same(left: list[tuple], right: list[tuple]) -> bool:
    """Equal row by row; floats compared by their repr (so -0.0 and inf are told apart)."""
    def key(row):
        return tuple(repr(v) if isinstance(v, float) else v for v in row)
    return len(left) == len(right) and all(key(a) == key(b) for a, b in zip(left, right))


class ObservedServices:
    """The real services; records how each Execute handler finished."""

    def __init__(self, services: VoltServices) -> None:
        self.services = services
        self.finished: asyncio.Queue = asyncio.Queue()

    def handler_for(self, path: str):
        handler = self.services.handler_for(path)
        if path != EXECUTE or handler is None:
            return handler

        async def observed(call) -> None:
            outcome = "returned"
            try:
                await handler(call)
            except asyncio.CancelledError:
                outcome = "cancelled"
                raise
            except BaseException as error:
                outcome = type(error).__name__
                raise
            finally:
                self.finished.put_nowait((outcome, call.closed))

        return observed

    async def close(self) -> None:
        await self.services.close()


@pytest.fixture
async def volt(tmp_path):
    state = VoltState(tmp_path / "state")
    services = VoltServices(tmp_path / "data", state.volt_id)
    owner = state.register("owner")
    services.ensure_home(owner.identity())
    database = services.sqlite.create_database(owner.identity(), "rows")
    path = services.sqlite.path_for(database.id)
    fill(path)
    observed = ObservedServices(services)
    server = VoltServer(state, observed)
    await server.start("127.0.0.1", 0)

    def config(generation: str) -> dict:
        return state.client_config(owner, protocol=generation, http_address=server.http_address)

    yield SimpleNamespace(server=server, config=config, database_id=database.id, path=path, observed=observed)
    await server.stop()
    await services.close()


def start(volt, sql: str = ALL_ROWS, **options) -> dict:
    return {"start": {"database_id": volt.database_id, "statement": sql, **options}}


async def next_message(wire: Wire, session, call_id: int, timeout: float = 5.0):
    """The next inner message of ``call_id`` as (kind, parsed JSON or end error)."""
    incoming = await asyncio.wait_for(wire._next_for(session, call_id), timeout)
    assert incoming.kind != ENVELOPE_ERROR, incoming.error
    inner = parse_inner(session.open(call_id, [incoming])[0])
    return (inner.kind, json.loads(inner.json) if inner.kind == "payload" else inner.error)


# ------------------------------------------------------------------ whole results


@pytest.mark.parametrize("generation", ["v1", "v2"])
async def test_a_large_result_arrives_whole_and_in_order(volt, generation):
    async with VoltClient(volt.config(generation)) as client:
        call = await client.execute(start(volt))
        responses = [response async for response in call]
    assert [c["name"] for c in responses[0]["header"]["column"]] == ["id", "t", "r", "b"]
    assert same([row_values(r) for r in responses[1:]], expected_rows(volt.path))
    assert (await asyncio.wait_for(volt.observed.finished.get(), 5)) == ("returned", False)


@pytest.mark.parametrize("generation", ["v1", "v2"])
@pytest.mark.parametrize("page_size", [1, 7, 999, 1000, 1001, 2500, ROWS])
async def test_paging_with_the_client_gives_every_row(volt, generation, page_size):
    sql = ALL_ROWS if page_size > 1 else ALL_ROWS + " LIMIT 40"
    rows = []
    async with VoltClient(volt.config(generation)) as client:
        call = await client.execute(start(volt, sql, page_size=page_size))
        async for response in call:
            if "row" in response:
                rows.append(row_values(response))
                if len(rows) % page_size == 0:
                    try:
                        await call.send({"next": {}})
                    except CallError:
                        pass  # the result ended with this full page
    assert same(rows, expected_rows(volt.path, sql))


@pytest.mark.parametrize("generation", ["v1", "v2"])
async def test_a_full_page_waits_for_next_and_end_stops_the_statement(volt, generation):
    wire = await Wire.open(volt.server.http_address.replace("http", "ws") + "/api")
    try:
        session = session_for(volt.config(generation))
        call_id = await wire.start(session, EXECUTE, json.dumps(start(volt, page_size=1500)))
        expected = expected_rows(volt.path)
        assert (await next_message(wire, session, call_id))[1]["header"]
        rows = [row_values((await next_message(wire, session, call_id))[1]) for _ in range(1500)]
        with pytest.raises(asyncio.TimeoutError):  # nothing more until the client asks
            await asyncio.wait_for(wire.websocket.recv(), 0.3)
        await wire.send(session, call_id, {"next": {}})
        rows += [row_values((await next_message(wire, session, call_id))[1]) for _ in range(1500)]
        assert same(rows, expected[:3000])
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(wire.websocket.recv(), 0.3)
        await wire.send(session, call_id, {"end": {}})
        assert await next_message(wire, session, call_id) == ("end", None)
    finally:
        await wire.close()
    assert (await asyncio.wait_for(volt.observed.finished.get(), 5)) == ("returned", False)


# ------------------------------------------------------------------ stopping early, errors


@pytest.mark.parametrize("generation", ["v1", "v2"])
async def test_cancel_mid_stream_leaves_the_connection_usable(volt, generation):
    async with VoltClient(volt.config(generation)) as client:
        call = await client.execute(start(volt))
        seen = 0
        async for _ in call:
            seen += 1
            if seen == 100:
                break
        await call.cancel()
        assert (await asyncio.wait_for(volt.observed.finished.get(), 10))[0] == "returned"
        again = await client.execute(start(volt, ALL_ROWS + " LIMIT 1200"))
        responses = [response async for response in again]
    assert same([row_values(r) for r in responses[1:]], expected_rows(volt.path, ALL_ROWS + " LIMIT 1200"))


ENDLESS = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 50000000) "
           "SELECT i, 'a row of an endless result' FROM n")


@pytest.mark.parametrize("generation", ["v1", "v2"])
async def test_disconnect_mid_stream_cancels_the_statement(volt, generation):
    wire = await Wire.open(volt.server.http_address.replace("http", "ws") + "/api")
    session = session_for(volt.config(generation))
    call_id = await wire.start(session, EXECUTE, json.dumps(start(volt, ENDLESS)))
    for _ in range(2000):
        await next_message(wire, session, call_id)
    wire.websocket.transport.abort()
    assert (await asyncio.wait_for(volt.observed.finished.get(), 10)) == ("cancelled", True)
    for _ in range(100):
        if volt.server.connection_count == 0:
            break
        await asyncio.sleep(0.02)
    assert volt.server.connection_count == 0
    async with VoltClient(volt.config(generation)) as client:  # the Volt goes on serving
        responses = [r async for r in await client.execute(start(volt, ALL_ROWS + " LIMIT 5"))]
    assert same([row_values(r) for r in responses[1:]], expected_rows(volt.path, ALL_ROWS + " LIMIT 5"))


@pytest.mark.parametrize("generation", ["v1", "v2"])
async def test_an_sql_error_after_the_first_batch_follows_its_rows(volt, generation):
    sql = ("SELECT id, CASE WHEN id < 1500 THEN id ELSE abs(-9223372036854775807 - 1) END "
           "FROM t ORDER BY id")
    rows = []
    async with VoltClient(volt.config(generation)) as client:
        call = await client.execute(start(volt, sql))
        with pytest.raises(CallError, match="integer overflow"):
            async for response in call:
                if "row" in response:
                    rows.append(row_values(response))
    # fetched 1000 at a time: the first batch went out, the failing second one did not
    assert rows == [(i, i) for i in range(1000)]


# ------------------------------------------------------------------ the transport on its own


class BatchServices:
    """GetResource answers with TEXTS (send, send_many, send, send_many);
    SubscribeWire sends batches of rows until cancelled, counting them."""

    def __init__(self) -> None:
        self.batches = 0
        self.cancelled = asyncio.Event()

    def handler_for(self, path: str):
        async def answer(call) -> None:
            await call.receive()
            await call.send(TEXTS[0])
            await call.send_many(TEXTS[1:-1])
            await call.send(TEXTS[-1])
            await call.send_many([{"dict": True}, TEXTS[0]])

        async def endless(call) -> None:
            await call.receive()
            try:
                while True:
                    await call.send_many([ROW % (self.batches * 500 + n) for n in range(500)])
                    self.batches += 1
            except asyncio.CancelledError:
                self.closed_when_cancelled = call.closed
                self.cancelled.set()
                raise

        return {GET_RESOURCE: answer, SUBSCRIBE_WIRE: endless}.get(path)

    async def close(self) -> None:
        pass


ROW = '{"row":{"column":[{"integer":"%d"},{"text":"sensor"},{"real":21.5},{"null":true}]}}'
# Payload texts whose frames take every websocket length form (7-bit, 16-bit and
# 64-bit) in both generations, and more than one send_many chunk in total.
TEXTS = [json.dumps({"n": n, "pad": "p" * size}) for n, size in enumerate(
    [0, 30, 60, 61, 62, 90, 200, 1000, 40_000, 48_000, 49_000, 65_500, 70_000, SEND_MANY_CHUNK_BYTES + 10, 5]
)]


@pytest.fixture
async def batch_server(tmp_path):
    state = VoltState(tmp_path)
    services = BatchServices()
    server = VoltServer(state, services)
    await server.start("127.0.0.1", 0)
    owner = state.register("owner")
    yield server, services, lambda generation: state.client_config(
        owner, protocol=generation, http_address=server.http_address)
    await server.stop()


@pytest.mark.parametrize("generation", ["v1", "v2"])
async def test_send_and_send_many_interleave_in_order_in_every_length_form(batch_server, generation):
    server, _, config = batch_server
    wire = await Wire.open(server.http_address.replace("http", "ws") + "/api")
    try:
        outcome = await wire.call(session_for(config(generation)), GET_RESOURCE, {}, timeout=10)
    finally:
        await wire.close()
    assert outcome.ended and outcome.end_error is None
    assert outcome.responses == [json.loads(t) for t in TEXTS] + [{"dict": True}, json.loads(TEXTS[0])]


@pytest.mark.parametrize("generation", ["v1", "v2"])
async def test_a_client_that_stops_reading_pauses_the_producer(batch_server, generation):
    server, services, config = batch_server
    wire = await Wire.open(server.http_address.replace("http", "ws") + "/api", max_queue=4)
    session = session_for(config(generation))
    call_id = await wire.start(session, SUBSCRIBE_WIRE, "{}")
    assert (await next_message(wire, session, call_id))[0] == "payload"
    # The client reads no more: kernel buffers fill, then the server's transport
    # pauses and send_many waits, so the producer stops.
    last, steady_since = -1, asyncio.get_running_loop().time()
    while asyncio.get_running_loop().time() - steady_since < 0.5:
        await asyncio.sleep(0.05)
        if services.batches != last:
            last, steady_since = services.batches, asyncio.get_running_loop().time()
        assert services.batches < 100_000, "the producer was never paused"
    connection = next(iter(server._connections)).websocket
    assert connection.paused
    buffered = connection.transport.get_write_buffer_size() + connection._outgoing_bytes
    assert buffered < 2 * SEND_MANY_CHUNK_BYTES
    # Reading again resumes it, and every row is there, in order.
    numbers = []
    while services.batches < last + 5:
        kind, message = await next_message(wire, session, call_id)
        numbers.append(int(message["row"]["column"][0]["integer"]))
    assert numbers == list(range(1, len(numbers) + 1))
    wire.websocket.transport.abort()
    await asyncio.wait_for(services.cancelled.wait(), 5)
    assert services.closed_when_cancelled

