"""Call objects: what a caller holds while a call is open.

:class:`Call` serves every kind of method. It receives decoded frames from the
connection's single reader task, turns them into events (``data``, ``error``,
``end``) for handlers registered with :meth:`Call.on`, into items for
``async for``, and into the result of :meth:`Call.wait`. The data layer can
instead take the call's frames in batches (:meth:`Call.envelope_batches`) and
decrypt and decode them together.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator

import numpy as np
import orjson

from volt_data.errors import CallCancelledError, CallError, CallTimeoutError, ProtocolError, VoltError
from volt_data.protocol import envelope
from volt_data.protocol.batch_cipher import DecryptedBatch
from volt_data.protocol.batch_open import BATCH_FRAMES
from volt_data.protocol.session import ENVELOPE_ERROR, Incoming
from volt_data.schema import MethodInfo

if TYPE_CHECKING:
    from volt_data.client.connection import Connection

logger = logging.getLogger("volt_data.client.calls")

EVENTS = ("data", "error", "end")
_PAYLOAD_PREFIX = b'{"method_payload"'
_END = object()


def status_error(response: Any, method: MethodInfo) -> CallError | None:
    """The CallError a response's ``status`` reports, or None when it reports success."""
    if not isinstance(response, dict):
        return None
    status = response.get("status")
    if isinstance(status, dict) and status.get("message"):
        return CallError(
            str(status["message"]),
            code=int(status.get("code") or 0),
            description=str(status.get("description") or ""),
            kind="status",
            method=method.name,
        )
    return None


class Call:
    """One open call on a connection.

    Unary calls are awaited through :meth:`result`. Streaming calls are used with
    ``on("data" | "error" | "end", handler)`` (also as a decorator),
    :meth:`send`, :meth:`end`, ``async for response in call`` and ``await
    call.wait()``. ``await call`` returns the call itself once its first frame is
    on the wire, so the old client's ``call = await client.subscribeWire(...)``
    keeps working.
    """

    def __init__(self, connection: "Connection", method: MethodInfo, call_id: int) -> None:
        self.connection = connection
        self.method = method
        self.id = call_id
        self._handlers: dict[str, list[Callable]] = {name: [] for name in EVENTS}
        self._items: deque = deque()
        self._item_ready = asyncio.Event()
        self._done = asyncio.get_running_loop().create_future()
        self._opened = asyncio.get_running_loop().create_future()
        self._last_data: Any = None
        self._error: VoltError | None = None
        self._raw: list[str | bytes] | None = None  # batch mode: sealed frames as received
        self._iterating = False
        self._unheard_error: BaseException | None = None
        self._unheard_end = False
        self.ended = False
        self.half_closed = False

    # ------------------------------------------------------------------ events

    def on(self, event: str, handler: Callable | None = None):
        """Register ``handler`` for ``event``; without a handler, return a decorator.

        Events that happened before a handler was registered are replayed to it
        (soon, in order), so ``call = await client.sqlExecute(...)`` followed by
        ``@call.on("data")`` never misses the first rows.
        """
        if event not in EVENTS:
            raise ValueError(f"unknown call event {event!r}; use one of {', '.join(EVENTS)}")

        def register(function: Callable) -> Callable:
            self._handlers[event].append(function)
            self._replay(event, function)
            return function

        return register(handler) if handler is not None else register

    def _replay(self, event: str, function: Callable) -> None:
        loop = asyncio.get_running_loop()
        if event == "data" and not self._iterating:
            kept = deque()
            for item in self._items:
                if item is _END or isinstance(item, BaseException):
                    kept.append(item)
                else:
                    loop.call_soon(self._call_handler, event, function, (item,))
            self._items = kept
        elif event == "error" and self._unheard_error is not None:
            loop.call_soon(self._call_handler, event, function, (self._unheard_error,))
            self._unheard_error = None
        elif event == "end" and self._unheard_end:
            loop.call_soon(self._call_handler, event, function, ())
            self._unheard_end = False

    def _call_handler(self, event: str, handler: Callable, args: tuple) -> None:
        try:
            outcome = handler(*args)
            if inspect.isawaitable(outcome):
                asyncio.ensure_future(outcome)
        except Exception:  # a user's handler must not kill the reader
            logger.exception("%s handler of %s raised", event, self.method.name)

    def _emit(self, event: str, *args: Any) -> None:
        handlers = self._handlers[event]
        if not handlers:
            if event == "error":
                self._unheard_error = args[0]
            elif event == "end":
                self._unheard_end = True
            return
        for handler in list(handlers):
            self._call_handler(event, handler, args)

    # ------------------------------------------------------------- from reader

    def _feed(self, incoming: Incoming, frame: str | bytes) -> None:
        """Called by the connection's reader with each frame for this call (decoded and as received)."""
        if self.ended:
            return
        if incoming.kind == ENVELOPE_ERROR:
            self._finish(CallError(incoming.error or "envelope error", kind="envelope", method=self.method.name))
            return
        if self._raw is not None:
            # v1 frames that take the fast route stay bytes; keep the list all bytes.
            self._take_raw(frame.encode() if frame.__class__ is str else frame)
            return
        try:
            plaintext = self.connection.session.open(self.id, [incoming])[0]
            self._handle_inner(envelope.parse_inner(plaintext))
        except ProtocolError as exc:
            self._finish(exc)

    def _handle_inner(self, inner: envelope.InnerMessage) -> None:
        if inner.kind == envelope.PAYLOAD:
            try:
                response = orjson.loads(inner.json)
            except orjson.JSONDecodeError:
                self._finish(ProtocolError(f"{self.method.name}: response is not JSON"))
                return
            error = status_error(response, self.method)
            if error is not None:
                self._error = self._error or error
                self._push(error)
                self._emit("error", error)
                return
            self._last_data = response
            if self._iterating or not self._handlers["data"]:
                self._push(response)
            self._emit("data", response)
        elif inner.kind == envelope.END:
            if inner.error:
                self._finish(CallError(inner.error, kind="end", method=self.method.name))
            else:
                self._finish(None)
        else:
            self._finish(ProtocolError(f"{self.method.name}: unexpected {inner.kind} message from the Volt"))

    def _push(self, item: Any) -> None:
        self._items.append(item)
        self._item_ready.set()

    def _finish(self, error: BaseException | None) -> None:
        """End the call locally: settle waiters, emit the final event, free the id."""
        if self.ended:
            return
        self.ended = True
        if error is not None and not isinstance(error, VoltError):
            error = VoltError(str(error))
        if error is not None:
            self._error = error
            if not any(item is error for item in self._items):
                self._items.append(error)
            self._emit("error", error)
        else:
            self._emit("end")
        self._items.append(_END)
        self._item_ready.set()
        if not self._done.done():
            if self._error is not None:
                self._done.set_exception(self._error)
                self._done.exception()  # retrieved here: an unawaited failed call must not warn
            else:
                self._done.set_result(self._last_data)
        if not self._opened.done():
            self._opened.set_result(None)
        self.connection._forget(self)

    # ----------------------------------------------------------------- caller

    def __await__(self):
        yield from asyncio.shield(self._opened).__await__()
        return self

    async def send(self, request: dict | None = None) -> None:
        """Send one more request message (checked against the schema first)."""
        if self.ended:
            reason = f" ({self._error})" if self._error is not None else ""
            raise CallError(f"the call has already ended{reason}", kind="end", method=self.method.name)
        if self.half_closed:
            raise CallError("cannot send after end()", kind="end", method=self.method.name)
        await self.connection._send_request(self, request)

    async def end(self) -> None:
        """Half-close: tell the Volt no more requests follow. Responses may still arrive."""
        if self.ended or self.half_closed:
            return
        self.half_closed = True
        await self.connection._send_end(self)

    async def cancel(self) -> None:
        """Stop the call: half-close it on the Volt, then end it locally at once."""
        if not self.ended:
            if not self.half_closed:
                self.half_closed = True
                try:
                    await self.connection._send_end(self)
                except VoltError:
                    pass
            self._finish(CallCancelledError(f"{self.method.name} was cancelled"))

    async def wait(self, timeout: float | None = None) -> Any:
        """Wait for the call to end; return the last data response, raise its error."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._done), timeout)
        except asyncio.TimeoutError:
            await self.cancel()
            raise CallTimeoutError(f"{self.method.name} did not finish within {timeout} s") from None

    async def result(self, timeout: float | None = None) -> Any:
        """Unary result: the (last) response, raising the first error."""
        if self._error is not None and not self.ended:
            await self.cancel_quietly()
        return await self.wait(timeout)

    async def cancel_quietly(self) -> None:
        error = self._error
        if not self.ended:
            await self.cancel()
        self._error = error

    @property
    def done(self) -> bool:
        return self.ended

    @property
    def error(self) -> VoltError | None:
        return self._error

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        """Yield data responses; raise a status or end error where it occurs."""
        self._iterating = True
        while True:
            while not self._items:
                self._item_ready.clear()
                await self._item_ready.wait()
            item = self._items.popleft()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    # ---------------------------------------------------------- batch mode

    def take_frames_in_batches(self) -> None:
        """Switch to batch mode before any response arrives (the data layer's path)."""
        self._raw = []

    def _take_raw(self, frame: str | bytes) -> None:
        """Batch mode: keep a sealed frame for :meth:`envelope_batches` to open with its neighbours."""
        self._raw.append(frame)
        self._item_ready.set()

    def _take_raw_many(self, frames: list) -> None:
        """Batch mode: :meth:`_take_raw` for a run of frames."""
        self._raw.extend(frames)
        self._item_ready.set()

    async def envelope_batches(self) -> AsyncIterator[DecryptedBatch]:
        """Decrypted inner ``method_payload`` messages, in batches of whatever has
        arrived (at most ``BATCH_FRAMES``); ends when the call ends, raising its error.

        Each batch is a :class:`DecryptedBatch`: the plaintexts stay in one buffer
        for the columnar decoder. Other inner messages (``method_end``) are handled
        in order, between batches.
        """
        if self._raw is None:
            raise RuntimeError("call is not in batch mode")
        while True:
            while not self._raw and not self.ended:
                self._item_ready.clear()
                await self._item_ready.wait()
            arrived, self._raw = self._raw, []
            for first in range(0, len(arrived), BATCH_FRAMES):
                if self.ended:
                    break  # in flight when the call ended (e.g. cancelled): its keys are gone
                try:
                    batch = self.connection.session.open_batch(self.id, arrived[first : first + BATCH_FRAMES])
                except ProtocolError as exc:
                    self._finish(exc)
                    raise
                is_payload = batch.starts_with(_PAYLOAD_PREFIX)
                if is_payload.all():
                    yield batch
                else:
                    for part in self._payload_runs(batch, is_payload):
                        yield part
            if self.ended and not self._raw:
                if self._error is not None:
                    raise self._error
                return

    def _payload_runs(self, batch: DecryptedBatch, is_payload: np.ndarray) -> Iterator[DecryptedBatch]:
        """The runs of ``method_payload`` messages of ``batch``; other messages are handled where they stand."""
        first = 0
        for index in np.flatnonzero(~is_payload).tolist():
            inner = envelope.parse_inner(batch.message(index))
            if inner.kind == envelope.PAYLOAD:
                continue  # a payload in other JSON spacing: the decoder reads it too
            if index > first:
                yield batch.subset(first, index)
            first = index + 1
            self._handle_inner(inner)
        if first < len(batch):
            yield batch.subset(first, len(batch))
