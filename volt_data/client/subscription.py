"""A wire subscription that survives a lost connection.

``client.subscribe_wire({"wire_id": ...}, resume=True)`` returns a
:class:`ResumingSubscription`: it behaves like the streaming call it wraps
(``on``, ``send``, ``end``, ``cancel``, ``wait``, ``async for``), and when the
connection is lost it reconnects and subscribes again with the same request,
instead of ending with ConnectionLostError. A wire keeps no history, so chunks
published while the subscriber was away are not delivered.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from volt_data.client.calls import EVENTS, Call
from volt_data.errors import CallCancelledError, ConnectionLostError, VoltError
from volt_data.schema import MethodInfo

if TYPE_CHECKING:
    from volt_data.client.api import VoltClient

logger = logging.getLogger("volt_data.client.subscription")

_END = object()


class ResumingSubscription:
    """SubscribeWire, re-subscribed after every lost connection for up to ``retry_for`` seconds.

    Emits ``data``, ``error`` and ``end`` like a call, and ``resumed`` (no
    arguments) each time it subscribed again after a loss.
    """

    def __init__(self, client: "VoltClient", method: MethodInfo, request: dict, *,
                 retry_for: float = 30.0, retry_interval: float = 0.25) -> None:
        self.client = client
        self.method = method
        self.request = request
        self.retry_for = retry_for
        self.retry_interval = retry_interval
        self.resumes = 0
        self._handlers: dict[str, list[Callable]] = {name: [] for name in (*EVENTS, "resumed")}
        self._call: Call | None = None
        self._items: asyncio.Queue = asyncio.Queue()
        self._stopping = False
        self._done = asyncio.get_running_loop().create_future()
        self._runner: asyncio.Task | None = None

    async def start(self) -> "ResumingSubscription":
        self._call = await self._subscribe()
        self._runner = asyncio.ensure_future(self._follow())
        return self

    def __await__(self):
        yield from ()
        return self

    # ----------------------------------------------------------------- events

    def on(self, event: str, handler: Callable | None = None):
        if event not in self._handlers:
            raise ValueError(f"unknown subscription event {event!r}")

        def register(function: Callable) -> Callable:
            self._handlers[event].append(function)
            return function

        return register(handler) if handler is not None else register

    def _emit(self, event: str, *args: Any) -> None:
        for handler in list(self._handlers[event]):
            try:
                outcome = handler(*args)
                if inspect.isawaitable(outcome):
                    asyncio.ensure_future(outcome)
            except Exception:
                logger.exception("%s handler of a wire subscription raised", event)

    def _on_data(self, response: Any) -> None:
        self._items.put_nowait(response)
        self._emit("data", response)

    # ------------------------------------------------------------ the follower

    async def _subscribe(self) -> Call:
        call = await self.client.streaming_call(self.method, self.request)
        call.on("data", self._on_data)
        return call

    async def _follow(self) -> None:
        """Wait for each call to end; on a lost connection, subscribe again."""
        while True:
            try:
                await self._call.wait()
            except ConnectionLostError as lost:
                if self._stopping:
                    return self._finish(None)
                logger.info("wire subscription lost its connection (%s); resubscribing", lost)
                try:
                    self._call = await self._resubscribe()
                except VoltError as error:
                    return self._finish(error)
                self.resumes += 1
                self._emit("resumed")
                continue
            except VoltError as error:
                return self._finish(None if isinstance(error, CallCancelledError) and self._stopping else error)
            return self._finish(None)

    async def _resubscribe(self) -> Call:
        deadline = asyncio.get_running_loop().time() + self.retry_for
        while True:
            try:
                return await self._subscribe()  # the client reconnects on demand
            except ConnectionLostError:
                if asyncio.get_running_loop().time() >= deadline:
                    raise
                await asyncio.sleep(self.retry_interval)

    def _finish(self, error: VoltError | None) -> None:
        if error is not None:
            self._items.put_nowait(error)
            self._emit("error", error)
        else:
            self._emit("end")
        self._items.put_nowait(_END)
        if not self._done.done():
            if error is not None:
                self._done.set_exception(error)
                self._done.exception()
            else:
                self._done.set_result(None)

    # ----------------------------------------------------------------- caller

    async def send(self, request: dict | None = None) -> None:
        if isinstance(request, dict) and request.get("stop"):
            self._stopping = True
        await self._call.send(request)

    async def end(self) -> None:
        self._stopping = True
        await self._call.end()

    async def cancel(self) -> None:
        self._stopping = True
        await self._call.cancel()

    async def wait(self, timeout: float | None = None) -> None:
        return await asyncio.wait_for(asyncio.shield(self._done), timeout)

    @property
    def done(self) -> bool:
        return self._done.done()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            item = await self._items.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
