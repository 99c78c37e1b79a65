"""What ``%%volt_sql`` shows: a live progress line, the result summary, and short error blocks.

Every object here has a ``text/plain`` form (what nbval and terminals see) and
an HTML form; neither contains a traceback. The progress line is a display
handle updated in place; the data layer calls it from its event-loop thread,
which is safe because an update only publishes one ``update_display_data``
message (ipykernel's IOPub socket forwards sends from any thread) and touches
no widget state.
"""
from __future__ import annotations

import html
import threading
import time
from typing import Any

from IPython.display import display

PROGRESS_INTERVAL = 0.2


def _bundle(text: str, markup: str) -> dict:
    return {"text/plain": text, "text/html": markup}


def summary_text(rows: int, columns: int | None, elapsed: float, database: str | None = None) -> str:
    """``"120 rows × 4 columns from sample in 0.03 s"``."""
    shape = f"{rows:,} row{'s' if rows != 1 else ''}"
    if columns is not None:
        shape += f" × {columns} column{'s' if columns != 1 else ''}"
    source = f" from {database}" if database else ""
    return f"{shape}{source} in {elapsed:.2f} s"


class QueryStatus:
    """A live progress line while rows arrive, then the summary (or a notice) as its own output.

    The progress line starts empty and is cleared again at the end, so the
    stored outputs are the same whether or not a frontend applied the
    in-between ``update_display_data`` messages (nbval does not): an empty
    line and the final summary.
    """

    def __init__(self, database: str | None, *, show: bool = True) -> None:
        self.database = database
        self.show = show
        self.started = time.perf_counter()
        self._handle: Any = None
        self._last = 0.0
        self._lock = threading.Lock()
        if show:
            self._handle = display(_bundle("", ""), raw=True, display_id=True)

    def _running_text(self, rows: int, elapsed: float) -> str:
        return f"running on {self.database or 'Volt'}: {rows:,} rows, {elapsed:.1f} s"

    @staticmethod
    def _markup(text: str, colour: str = "#555") -> str:
        return f'<div class="volt-sql-status" style="color:{colour};font-size:smaller">{html.escape(text)}</div>'

    def progress(self, rows: int, elapsed: float) -> None:
        """The data layer's ``progress(rows, elapsed)`` hook, throttled to a few updates a second."""
        now = time.perf_counter()
        with self._lock:  # held while publishing, so no update can land after finish() cleared the line
            if self._handle is None or now - self._last < PROGRESS_INTERVAL:
                return
            self._last = now
            text = self._running_text(rows, elapsed)
            self._handle.update(_bundle(text, self._markup(text)), raw=True)

    def finish(self, text: str, colour: str = "#555") -> None:
        """Clear the progress line and show ``text`` (the summary or a notice)."""
        with self._lock:
            handle, self._handle = self._handle, None
            if handle is not None:
                handle.update(_bundle("", ""), raw=True)
        if self.show:
            display(_bundle(text, self._markup(text, colour)), raw=True)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def show_error(title: str, message: str, details: list[str] | None = None) -> None:
    """Display a short error block: a title, the message, optional detail lines — no traceback."""
    lines = [f"{title}: {message}", *(details or [])]
    markup = (
        '<div class="volt-sql-error" style="border-left:4px solid #c0392b;padding:4px 8px;'
        'background:#fdecea;font-family:monospace;white-space:pre-wrap">'
        f"<b>{html.escape(title)}</b>: {html.escape(message)}"
        + "".join(f"<br>{html.escape(line)}" for line in details or [])
        + "</div>"
    )
    display(_bundle("\n".join(lines), markup), raw=True)


def show_call_error(error: Any) -> None:
    """Display a :class:`~volt_data.CallError` as the Volt reported it."""
    details = []
    description = getattr(error, "description", "")
    message = getattr(error, "message", str(error))
    if description and description != message:
        details.append(description)
    if getattr(error, "code", 0):
        details.append(f"code {error.code}")
    show_error("Volt SQL error", message, details)
