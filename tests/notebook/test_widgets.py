"""Live wire widgets on a real LocalVolt: decoding, window, throttling, threads, lifecycle, no leaks."""
from __future__ import annotations

import asyncio
import threading
import time

import orjson

from nb_helpers import open_calls, run, wait_for


def make_wire(client, name: str) -> str:
    response = client.call("SaveWire", {"resource": {"name": name}, "create": True})
    return response["resource"]["id"]


def publish(client, wire_id: str, chunks: list[bytes]) -> None:
    call = client.publish_wire({"wire_id": wire_id})
    for chunk in chunks:
        call.send({"chunk": chunk})
    call.end()
    call.wait(5)


def test_table_shows_the_sample_wire_and_stops(shell):
    from volt_data.notebook import LiveTable, watch_wire

    client, wire_id = shell.user_ns["volt_client"], shell.user_ns["volt_sample"]["wire_id"]
    before = open_calls(client)
    feed = watch_wire(client, wire_id)
    table = LiveTable(feed, rows=3)
    assert open_calls(client) == before + 1
    assert wait_for(lambda: len(table.rendered_rows) >= 2)
    assert {"sensor", "ts", "temperature", "humidity"} <= set(table.rendered_rows[0])
    assert "<th>temperature</th>" in table.table.value
    table.stop()
    assert feed.stopped and wait_for(lambda: open_calls(client) == before)
    received = feed.received
    time.sleep(0.6)  # the sample wire publishes every 0.25 s: nothing more may arrive
    assert feed.received == received


def test_window_decoder_and_throttling(shell):
    from volt_data.notebook import LivePlot, watch_wire

    client = shell.user_ns["volt_client"]
    wire_id = make_wire(client, "burst")
    feed = watch_wire(client, wire_id, decode=lambda chunk: {"n": int(chunk)}, window=20, max_rate=2)
    plot = LivePlot(feed, y="n")
    started = time.monotonic()
    publish(client, wire_id, [str(n).encode() for n in range(60)] + [b"not a number"])
    # the trailing render comes within 1/max_rate s of the last chunk
    # the undecodable last chunk may arrive a moment after the 60th good one
    assert wait_for(lambda: feed.received == 60 and feed.decode_errors == 1 and len(plot.lines.y) == 20
                    and plot.lines.y[-1] == 59, timeout=10), (feed, feed.decode_errors, feed.renders, list(plot.lines.y))
    assert list(plot.lines.y) == list(range(40, 60))  # the last 20 rows, latest wins
    elapsed = time.monotonic() - started
    assert feed.renders <= 2 * elapsed + 2  # 60 chunks, at most 2 renders a second (+ first and last)
    feed.stop()


def test_rows_render_on_the_loop_that_created_the_feed(shell):
    """In a kernel, cells run on the kernel's asyncio loop: widget updates must happen there."""
    from volt_data.notebook import WireFeed

    client = shell.user_ns["volt_client"]
    wire_id = make_wire(client, "threads")
    render_threads: set[str] = set()

    async def cell() -> WireFeed:
        feed = WireFeed(client, wire_id, max_rate=20)
        feed.add_listener(lambda rows: render_threads.add(threading.current_thread().name))
        await asyncio.get_running_loop().run_in_executor(
            None, publish, client, wire_id, [orjson.dumps({"v": n}) for n in range(5)]
        )
        while feed.received < 5 or feed.renders == 0:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        return feed

    loop = asyncio.new_event_loop()
    threading.current_thread().name, name = "kernel-main", threading.current_thread().name
    try:
        feed = loop.run_until_complete(cell())
    finally:
        threading.current_thread().name = name
        loop.close()
    feed.stop()
    assert render_threads == {"kernel-main"}


def test_rerunning_the_cell_stops_the_old_subscription(shell):
    client = shell.user_ns["volt_client"]
    before = open_calls(client)
    cell = (
        "from volt_data.notebook import LiveTable, watch_wire\n"
        "live = LiveTable(watch_wire(volt_client, volt_sample['wire_id']))"
    )
    run(shell, cell)
    first = shell.user_ns["live"]
    assert wait_for(lambda: first.feed.received > 0)
    run(shell, cell)
    second = shell.user_ns["live"]
    assert first.feed.stopped and not second.feed.stopped
    assert wait_for(lambda: open_calls(client) == before + 1)
    run(shell, "x = 1")  # another cell leaves the feed alone
    assert not second.feed.stopped
    second.close()  # closing the widget stops its feed
    assert second.feed.stopped and wait_for(lambda: open_calls(client) == before)


def test_unknown_wire_is_reported_and_nothing_leaks(shell):
    from volt_data.notebook import watch_wire

    client = shell.user_ns["volt_client"]
    before = open_calls(client)
    feed = watch_wire(client, "no-such-wire")
    assert wait_for(lambda: feed.error is not None)
    assert wait_for(lambda: open_calls(client) == before)
    feed.stop()
