"""Live widgets fed by a wire subscription: :class:`WireFeed`, :class:`LiveTable`, :class:`LivePlot`.

Threading: a :class:`~volt_data.SyncCall` runs its ``data`` handlers on the
client's background event-loop thread. Widget state must not be changed from
there: ipywidgets' traitlets, ``hold_sync`` and the comm's property lock are
not thread-safe, and the kernel's main thread handles the frontend's own
``update`` messages for the same widgets at the same time. So a feed only
*collects* rows on the background thread (under a lock) and hands rendering to
the thread that created it: when that thread runs an asyncio loop (the
ipykernel main loop, where cells run), through ``loop.call_soon_threadsafe``;
with no running loop (a plain ``InteractiveShell``, a script) there is no
frontend to race with, and rendering runs on the background loop.

Updates are throttled: at most ``max_rate`` renders a second, each showing the
latest window of rows (intermediate states are skipped, latest wins).

Feeds stop when asked (:meth:`WireFeed.stop`), when a widget is closed, and
when the notebook cell that created them runs again (see :func:`install_rerun_hook`).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable

import ipywidgets

logger = logging.getLogger("volt_data.notebook.widgets")

Decoder = Callable[[bytes], Any]


def decode_json(chunk: bytes) -> Any:
    """The default chunk decoder: one JSON document per chunk."""
    return json.loads(chunk)


class WireFeed:
    """One wire subscription, decoded into a bounded window of rows.

    ``decode`` turns each chunk (bytes) into a row (a dict for tables and plots);
    chunks it rejects (raises) are counted in :attr:`decode_errors` and skipped.
    ``window`` bounds the rows kept; ``max_rate`` bounds renders per second.
    """

    def __init__(
        self,
        client: Any,
        wire_id: str,
        *,
        decode: Decoder | None = None,
        window: int = 500,
        max_rate: float = 4.0,
    ) -> None:
        self.client = client
        self.wire_id = wire_id
        self.decode = decode or decode_json
        self.rows: deque = deque(maxlen=window)
        self.received = 0
        self.decode_errors = 0
        self.renders = 0
        self.error: BaseException | None = None
        self._interval = 1.0 / max_rate if max_rate > 0 else 0.0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[list], None]] = []
        self._flush_pending = False
        self._last_flush = 0.0
        self._stopped = False
        try:
            self._home_loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._home_loop = None
        self.call = client.subscribe_wire({"wire_id": wire_id})
        self.call.on("data", self._on_data)
        self.call.on("error", self._on_error)
        self.call.on("end", self._on_end)
        _registry.register(self)

    def __repr__(self) -> str:
        state = "stopped" if self.stopped else "live"
        return f"<WireFeed {self.wire_id} {state}, {self.received} received, {len(self.rows)} kept>"

    # -------------------------------------------------- background loop thread

    def _on_data(self, response: dict) -> None:
        try:
            row = self.decode(base64.b64decode(response.get("chunk", "")))
        except Exception:  # one bad chunk must not end the feed
            self.decode_errors += 1
            logger.debug("undecodable chunk on wire %s", self.wire_id, exc_info=True)
            return
        with self._lock:
            self.rows.append(row)
            self.received += 1
            if self._flush_pending or self._stopped:
                return
            self._flush_pending = True
        delay = max(0.0, self._last_flush + self._interval - time.monotonic())
        self._schedule(delay)

    def _on_error(self, error: BaseException) -> None:
        if not self._stopped:
            self.error = error
            logger.warning("wire %s subscription failed: %s", self.wire_id, error)

    def _on_end(self) -> None:
        self._schedule(0.0)

    def _schedule(self, delay: float) -> None:
        home = self._home_loop
        if home is not None and not home.is_closed():
            home.call_soon_threadsafe(home.call_later, delay, self._flush)
        else:
            asyncio.get_running_loop().call_later(delay, self._flush)

    # ------------------------------------------------------- rendering thread

    def _flush(self) -> None:
        with self._lock:
            self._flush_pending = False
            snapshot = list(self.rows)
        self._last_flush = time.monotonic()
        for listener in list(self._listeners):
            try:
                listener(snapshot)
            except Exception:
                logger.exception("rendering wire %s failed", self.wire_id)
        self.renders += 1

    def add_listener(self, listener: Callable[[list], None]) -> None:
        """Call ``listener(rows)`` with the current window at each (throttled) update."""
        self._listeners.append(listener)
        with self._lock:
            snapshot = list(self.rows)
        if snapshot:
            listener(snapshot)

    # --------------------------------------------------------------- control

    @property
    def stopped(self) -> bool:
        return self._stopped or self.call.done

    def stop(self) -> None:
        """End the subscription on the Volt (half-close) and stop updating."""
        if self._stopped:
            return
        self._stopped = True
        _registry.forget(self)
        if not self.call.done:
            try:
                self.call.cancel()
            except Exception:  # the connection may already be gone
                logger.debug("cancelling the subscription of %s failed", self.wire_id, exc_info=True)


def watch_wire(
    client: Any = None,
    wire_id: str | None = None,
    decode: Decoder | None = None,
    *,
    window: int = 500,
    max_rate: float = 4.0,
) -> WireFeed:
    """Subscribe to ``wire_id`` and return a :class:`WireFeed` for live widgets.

    ``client`` defaults to the one ``%volt_connect`` made; ``decode`` defaults to JSON.
    """
    if client is None:
        from volt_data.notebook.magics import current_client

        client = current_client()
    if not wire_id:
        raise ValueError("watch_wire needs a wire_id")
    return WireFeed(client, wire_id, decode=decode, window=window, max_rate=max_rate)


class _LiveWidget:
    """Shared behaviour: a feed, stop(), stop on close (from Python or the frontend)."""

    feed: WireFeed

    def _attach(self, feed: WireFeed) -> None:
        self.feed = feed
        feed.add_listener(self._render)
        comm = getattr(self, "comm", None)
        if comm is not None and hasattr(comm, "on_close"):
            comm.on_close(lambda _message: self.feed.stop())

    def stop(self) -> None:
        """Stop the feed; the widget keeps showing the last rows."""
        self.feed.stop()

    def close(self) -> None:
        """Stop the feed and remove the widget from the page."""
        self.feed.stop()
        super().close()  # type: ignore[misc]

    def _render(self, rows: list) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def _columns_of(rows: Iterable[Any]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        if isinstance(row, dict):
            names.update(dict.fromkeys(row))
    return list(names)


class LiveTable(_LiveWidget, ipywidgets.VBox):
    """A table of the latest ``rows`` rows of a wire feed (newest first)."""

    def __init__(self, feed: WireFeed, *, rows: int = 10, columns: list[str] | None = None, **kwargs: Any) -> None:
        self.status = ipywidgets.HTML()
        self.table = ipywidgets.HTML()
        super().__init__(children=[self.status, self.table], **kwargs)
        self.add_class("volt-live-table")
        self.visible_rows = rows
        self.columns = columns
        self.rendered_rows: list = []
        self._attach(feed)

    def _render(self, rows: list) -> None:
        shown = rows[-self.visible_rows:][::-1]
        columns = self.columns or _columns_of(shown)
        head = "".join(f"<th>{html.escape(str(name))}</th>" for name in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(row, name))}</td>" for name in columns) + "</tr>"
            for row in shown
        )
        self.rendered_rows = shown
        with self.hold_sync():
            self.table.value = f'<table class="volt-live-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
            self.status.value = (
                f"<small>wire {html.escape(self.feed.wire_id)}: {self.feed.received} received"
                f"{' (stopped)' if self.feed.stopped else ''}</small>"
            )


def _cell(row: Any, name: str) -> str:
    value = row.get(name, "") if isinstance(row, dict) else row
    return "" if value is None else str(value)


class LivePlot(_LiveWidget, ipywidgets.VBox):
    """A bqplot line chart of ``y`` fields against ``x`` over the feed's window.

    bqplot marks are ipywidgets themselves, so a new window is one state update
    per line (``x``/``y`` arrays) rather than a re-rendered image.
    """

    def __init__(
        self,
        feed: WireFeed,
        *,
        x: str | None = None,
        y: str | list[str] = "value",
        title: str = "",
        **kwargs: Any,
    ) -> None:
        import bqplot

        self.x_field = x
        self.y_fields = [y] if isinstance(y, str) else list(y)
        x_scale, y_scale = bqplot.LinearScale(), bqplot.LinearScale()
        self.lines = bqplot.Lines(
            x=[], y=[], scales={"x": x_scale, "y": y_scale}, labels=self.y_fields, display_legend=True
        )
        axes = [
            bqplot.Axis(scale=x_scale, label=x or "row"),
            bqplot.Axis(scale=y_scale, side="left", label=", ".join(self.y_fields)),
        ]
        self.figure = bqplot.Figure(marks=[self.lines], axes=axes, title=title, animation_duration=0)
        super().__init__(children=[self.figure], **kwargs)
        self.add_class("volt-live-plot")
        self.points = 0
        self._attach(feed)

    def _render(self, rows: list) -> None:
        rows = [row for row in rows if isinstance(row, dict)]
        if self.x_field:
            xs = [_number(row.get(self.x_field)) for row in rows]
        else:
            xs = list(range(self.feed.received - len(rows), self.feed.received))
        ys = [[_number(row.get(field)) for row in rows] for field in self.y_fields]
        self.points = len(xs)
        with self.lines.hold_sync():
            self.lines.x = xs
            self.lines.y = ys if len(ys) > 1 else ys[0]  # bqplot takes one line as a flat array


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


# ----------------------------------------------------------- re-run registry


class _FeedRegistry:
    """Feeds grouped by the notebook cell that created them.

    The key is the frontend's cell id when IPython reports one (JupyterLab and
    Notebook 7 send it, so it survives edits), else a hash of the cell's code.
    """

    def __init__(self) -> None:
        self.current_cell: str | None = None
        self.by_cell: dict[str | None, list[WireFeed]] = {}
        self._lock = threading.Lock()

    def register(self, feed: WireFeed) -> None:
        with self._lock:
            self.by_cell.setdefault(self.current_cell, []).append(feed)

    def forget(self, feed: WireFeed) -> None:
        with self._lock:
            for feeds in self.by_cell.values():
                if feed in feeds:
                    feeds.remove(feed)

    def live(self) -> list[WireFeed]:
        with self._lock:
            return [feed for feeds in self.by_cell.values() for feed in feeds]

    def pre_run_cell(self, info: Any) -> None:
        key = cell_key(info)
        self.current_cell = key
        with self._lock:
            stale = self.by_cell.pop(key, []) if key is not None else []
        for feed in stale:
            logger.info("cell re-run: stopping the feed of wire %s", feed.wire_id)
            feed.stop()

    def stop_all(self) -> None:
        for feed in self.live():
            feed.stop()


def cell_key(info: Any) -> str | None:
    """How a cell is recognised when it runs again: its id, else its code's hash."""
    cell_id = getattr(info, "cell_id", None)
    if cell_id:
        return f"id:{cell_id}"
    raw = getattr(info, "raw_cell", None)
    if raw is None:
        return None
    return "code:" + hashlib.sha256(raw.encode()).hexdigest()


_registry = _FeedRegistry()


def live_feeds() -> list[WireFeed]:
    """The feeds that have not been stopped."""
    return _registry.live()


def install_rerun_hook(ipython: Any) -> None:
    """Stop a cell's feeds when that cell runs again (``pre_run_cell``)."""
    ipython.events.register("pre_run_cell", _registry.pre_run_cell)


def uninstall_rerun_hook(ipython: Any) -> None:
    """Undo :func:`install_rerun_hook` and stop every feed."""
    try:
        ipython.events.unregister("pre_run_cell", _registry.pre_run_cell)
    except ValueError:
        pass
    _registry.stop_all()
