"""A private event loop on a background thread, for the local Volt's sync API.

``with LocalVolt():`` in a plain script (or in Jupyter, where the notebook's own
loop is busy running the cell) needs the server to keep serving while the
caller's thread blocks in client calls. The server therefore runs on a loop of
its own, on a daemon thread; the caller submits coroutines and waits for them.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable, Optional, TypeVar

__all__ = ["BackgroundLoop"]

T = TypeVar("T")


class BackgroundLoop:
    """An asyncio loop running forever on its own thread until :meth:`stop`."""

    def __init__(self, name: str = "volt-data local Volt") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    @property
    def in_loop_thread(self) -> bool:
        """True when called from the loop's own thread."""
        return threading.current_thread() is self._thread

    def run(self, coroutine: Awaitable[T], timeout: Optional[float] = None) -> T:
        """Run ``coroutine`` on the loop and wait for its result from another thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, function: Callable[..., T], *args: Any, timeout: Optional[float] = None) -> T:
        """Call a plain function on the loop thread (so it sees the running loop)."""
        async def invoke() -> T:
            return function(*args)

        if self.in_loop_thread:
            return function(*args)
        return self.run(invoke(), timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel what is left on the loop, stop it and join the thread."""
        async def cancel_rest() -> None:
            current = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not current]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        if self.loop.is_closed():
            return
        try:
            self.run(cancel_rest(), timeout)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
