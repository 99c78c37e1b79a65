"""Progress of a long read or write: rows so far and rows per second, without tqdm.

``progress=None`` means "on where someone is watching": in a Jupyter kernel an
ipywidgets bar, on a terminal one carriage-return line on stderr, off when
output goes to a file or pipe. ``True``/``False`` force it; a callable
``progress(rows, elapsed_seconds)`` receives every update instead.

Reporters are called from the event loop thread that runs the call; they
throttle themselves so a fast stream never spends its time drawing.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Callable, Union

logger = logging.getLogger("volt_data.data.progress")

ProgressOption = Union[bool, None, Callable[[int, float], object]]

WIDGET_INTERVAL = 0.2  # at most ~5 widget updates per second
TERMINAL_INTERVAL = 0.1


class Progress:
    """The reporter interface: ``update(rows)`` as rows arrive, ``close()`` once at the end."""

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.rows = 0
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def update(self, rows: int) -> None:
        """Record that ``rows`` rows have been received (or written) in total."""
        self.rows = rows

    def close(self, error: BaseException | None = None) -> None:
        """The work is over (failed with ``error`` if given)."""


def _rate_text(rows: int, elapsed: float) -> str:
    rate = rows / elapsed if elapsed > 0 else 0.0
    return f"{rows:,} rows  {rate:,.0f} rows/s  {elapsed:.1f} s"


class CallbackProgress(Progress):
    """Forwards every update to ``hook(rows, elapsed)``; a failing hook is logged, not raised."""

    def __init__(self, hook: Callable[[int, float], object], label: str = "") -> None:
        super().__init__(label)
        self._hook = hook

    def update(self, rows: int) -> None:
        self.rows = rows
        try:
            self._hook(rows, self.elapsed)
        except Exception:
            logger.exception("progress hook raised")

    def close(self, error: BaseException | None = None) -> None:
        self.update(self.rows)


class TerminalProgress(Progress):
    """One line on stderr, rewritten in place with ``\\r``; ends with a newline."""

    def __init__(self, label: str = "", stream=None) -> None:
        super().__init__(label)
        self._stream = stream or sys.stderr
        self._drawn = 0.0

    def _draw(self, suffix: str = "") -> None:
        text = f"\r{self.label + ': ' if self.label else ''}{_rate_text(self.rows, self.elapsed)}{suffix}"
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # closed stream: progress is never worth failing a query
            pass

    def update(self, rows: int) -> None:
        self.rows = rows
        now = time.perf_counter()
        if now - self._drawn >= TERMINAL_INTERVAL:
            self._drawn = now
            self._draw()

    def close(self, error: BaseException | None = None) -> None:
        self._draw(" (failed)\n" if error is not None else "\n")


class WidgetProgress(Progress):
    """An ipywidgets ``HTML`` line (rows, rows/s) shown in the notebook output."""

    def __init__(self, label: str = "") -> None:
        super().__init__(label)
        import ipywidgets
        from IPython.display import display

        self._widget = ipywidgets.HTML(value=self._html())
        self._drawn = 0.0
        display(self._widget)

    def _html(self, state: str = "") -> str:
        label = f"<b>{self.label}</b> " if self.label else ""
        return f"{label}{_rate_text(self.rows, self.elapsed)}{' ' + state if state else ''}"

    def update(self, rows: int) -> None:
        self.rows = rows
        now = time.perf_counter()
        if now - self._drawn >= WIDGET_INTERVAL:
            self._drawn = now
            self._widget.value = self._html()

    def close(self, error: BaseException | None = None) -> None:
        self._widget.value = self._html("— failed" if error is not None else "— done")


def in_notebook() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a kernel attached)."""
    shell_module = sys.modules.get("IPython")
    if shell_module is None or "ipykernel" not in sys.modules:
        return False
    try:
        shell = shell_module.get_ipython()
    except Exception:
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def make_progress(option: ProgressOption, label: str = "") -> Progress | None:
    """The reporter that ``option`` asks for, or None for no progress at all."""
    if option is False:
        return None
    if callable(option) and option is not True:
        return CallbackProgress(option, label)
    if in_notebook():
        try:
            return WidgetProgress(label)
        except ImportError:
            logger.debug("ipywidgets missing: progress goes to stderr")
            return TerminalProgress(label)
    if option is True:
        return TerminalProgress(label)
    stream = sys.stderr
    return TerminalProgress(label) if stream is not None and stream.isatty() else None
