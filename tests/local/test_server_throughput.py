"""The row hot path: a handler sending pre-encoded JSON strings, for both generations.

Prints the measured rate (run with ``-s`` to see it); the full 1,000,000-row
figures come from the benchmarks.
"""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.local.server_harness import GET_RESOURCE, SUBSCRIBE_WIRE, Wire, session_for
from volt_data.local.server import VoltServer
from volt_data.local.state import VoltState

ROWS = 2_000
ROW = '{"row":{"column":[{"integer":"%d"},{"text":"sensor"},{"real":21.5},{"null":true}]}}'


class RowServices:
    """Handlers for this test only: GetResource answers with ROWS pre-encoded row strings."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()

    def handler_for(self, path: str):
        async def rows(call) -> None:
            await call.receive()
            for number in range(ROWS):
                await call.send(ROW % number)

        async def endless(call) -> None:
            await call.receive()
            try:
                number = 0
                while True:
                    await call.send(ROW % number)
                    number += 1
            except asyncio.CancelledError:
                self.closed_when_cancelled = call.closed
                self.cancelled.set()
                raise

        return {GET_RESOURCE: rows, SUBSCRIBE_WIRE: endless}.get(path)

    async def close(self) -> None:
        pass


@pytest.fixture
async def row_server(tmp_path):
    state = VoltState(tmp_path)
    services = RowServices()
    server = VoltServer(state, services)
    await server.start("127.0.0.1", 0)
    yield server, state, services
    await server.stop()


@pytest.mark.parametrize("generation", ["v1", "v2"])
async def test_pre_encoded_rows_arrive_complete_and_in_order(row_server, generation):
    server, state, _ = row_server
    config = state.client_config(state.register("owner"), protocol=generation, http_address=server.http_address)
    wire = await Wire.open(server.http_address.replace("http", "ws") + "/api")
    try:
        session = session_for(config)
        started = time.perf_counter()
        outcome = await wire.call(session, GET_RESOURCE, {}, timeout=30)
        elapsed = time.perf_counter() - started
    finally:
        await wire.close()
    assert outcome.ended and outcome.end_error is None
    numbers = [int(json.loads(json.dumps(r))["row"]["column"][0]["integer"]) for r in outcome.responses]
    assert numbers == list(range(ROWS))
    print(f"\n{generation}: {ROWS / elapsed:,.0f} row frames/s end to end (incl. decrypting client)")


async def test_disconnect_during_a_fast_stream_cancels_the_producer(row_server):
    server, state, services = row_server
    config = state.client_config(state.register("owner"), protocol="v2", http_address=server.http_address)
    wire = await Wire.open(server.http_address.replace("http", "ws") + "/api")
    session = session_for(config)
    await wire.start(session, SUBSCRIBE_WIRE, "{}")
    await wire.websocket.recv()  # the stream is flowing
    wire.websocket.transport.abort()  # the client drops off the network mid-stream
    await asyncio.wait_for(services.cancelled.wait(), 5)
    assert services.closed_when_cancelled
    for _ in range(50):
        if server.connection_count == 0:
            break
        await asyncio.sleep(0.02)
    assert server.connection_count == 0
