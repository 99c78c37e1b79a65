"""One websocket to a Volt, one reader task, many calls.

The connection owns the socket and a protocol session (v1 or v2, from the
config's keys). A single reader task routes every received frame to its call
by id — never several readers racing on one socket — so calls never steal each
other's frames. Sends are serialised by the socket; ``websockets`` applies
flow control (a send waits while the peer is not reading).
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection, connect

from volt_data.client.calls import Call
from volt_data.client.frame_reader import RoutingClientConnection
from volt_data.config import VoltConfig
from volt_data.errors import ConnectionLostError, ProtocolError, VoltError
from volt_data.protocol import envelope
from volt_data.protocol.frames_v2 import PAYLOAD as PAYLOAD_FRAME
from volt_data.protocol.session import ENVELOPE_ERROR, KEY_EXCHANGE, client_session_for
from volt_data.schema import MethodInfo, check_request

logger = logging.getLogger("volt_data.client.connection")

#: Larger than any frame the Volt sends in practice; the protocol has no framing
#: limit of its own, so a bound here keeps a broken peer from exhausting memory.
DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
#: Bytes 10-12 of a v2 sealed frame without metadata and with a 16-byte IV.
V2_USUAL_SEAL = bytes([0, 0, 16])
#: Seconds ``close()`` waits for the Volt to acknowledge the close handshake.
CLOSE_TIMEOUT = 2.0


def ssl_context_for(config: VoltConfig, url: str) -> ssl.SSLContext | None:
    """System trust store for ``wss://``, plus the Volt's own CA when the config has one."""
    if not url.startswith("wss://"):
        return None
    context = ssl.create_default_context()
    if config.ca_pem:
        context.load_verify_locations(cadata=config.ca_pem)
    return context


class Connection:
    """A websocket connection to a Volt, shared by every call of a client."""

    def __init__(
        self,
        config: VoltConfig,
        *,
        url: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        open_timeout: float = 10.0,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self.config = config
        self.url = url or config.websocket_url()
        self.ssl_context = ssl_context if ssl_context is not None else ssl_context_for(config, self.url)
        self.open_timeout = open_timeout
        self.max_frame_bytes = max_frame_bytes
        self.session = client_session_for(
            config.private_key,
            config.volt_public_key,
            config.volt_id,
            session_id=config.session_id,
            relay_hops=self._relay_hops(),
        )
        self._socket: ClientConnection | None = None
        self._reader: asyncio.Task | None = None
        self._writer: asyncio.Task | None = None
        self._outbox: deque = deque()  # (frame, future) in the order they must reach the Volt
        self._outbox_ready = asyncio.Event()
        self._calls: dict[int, Call] = {}
        self._next_id = 1
        self._closed_error: VoltError | None = None

    def _relay_hops(self) -> list[str]:
        if not self.config.is_relayed:
            return []
        if self.config.generation == "v1":
            return [self.config.fingerprint] if self.config.fingerprint else []
        return [self.config.volt_id]

    # ---------------------------------------------------------------- lifecycle

    @property
    def is_open(self) -> bool:
        return self._socket is not None and self._reader is not None and not self._reader.done()

    async def open(self) -> None:
        try:
            self._socket = await connect(
                self.url,
                ssl=self.ssl_context,
                open_timeout=self.open_timeout,
                max_size=self.max_frame_bytes,
                compression=None,  # frames are ciphertext: compression only costs CPU
                # No keepalive pings: a reader busy decoding a large result answers
                # pings late, and a ping timeout would then kill a healthy transfer.
                # A Volt that goes away closes the TCP connection, which we see at once.
                ping_interval=None,
                # A close handshake on a dead (black-holed) network must not keep
                # close() waiting for websockets' default 10 s.
                close_timeout=CLOSE_TIMEOUT,
                create_connection=RoutingClientConnection,
            )
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as exc:
            raise ConnectionLostError(f"cannot connect to the Volt at {self.url}: {exc}") from exc
        self._closed_error = None
        # Data frames now go straight to _route_many as they are read; the reader
        # task below still sees anything websockets handles itself, and the close.
        # v1 is text only: its frames come as bytes, to be sliced and joined as such.
        self._socket.route_messages_to(self._route_many, raw_text=not self.session.binary)
        self._reader = asyncio.create_task(self._read_frames(), name=f"volt-reader {self.url}")
        self._writer = asyncio.create_task(self._write_frames(self._socket), name=f"volt-writer {self.url}")

    async def close(self) -> None:
        """Close the socket; calls still open fail with ConnectionLostError."""
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._reader.cancel()
        if self._writer is not None:
            self._writer.cancel()
        self._fail_open_calls(ConnectionLostError("the connection was closed by the client"))

    def _fail_open_calls(self, error: VoltError) -> None:
        calls = list(self._calls.values())
        if calls:
            error = type(error)(f"{error} while {len(calls)} call(s) were open")
        for call in calls:
            call._finish(error)
        self._calls.clear()

    # ------------------------------------------------------------------ reading

    async def _read_frames(self) -> None:
        socket = self._socket
        error: VoltError
        try:
            async for frame in socket:
                self._route(frame)
            error = ConnectionLostError(f"the Volt closed the connection ({self._close_reason(socket)})")
        except websockets.exceptions.ConnectionClosed:
            error = ConnectionLostError(f"connection to the Volt lost ({self._close_reason(socket)})")
        except Exception as exc:  # never leave calls hanging on an unexpected failure
            logger.exception("reader failed")
            error = ConnectionLostError(f"connection reader failed: {exc}")
        self._closed_error = error
        if self._socket is socket:
            self._socket = None
        if self._writer is not None:
            self._writer.cancel()
        self._fail_open_calls(error)

    @staticmethod
    def _close_reason(socket: ClientConnection) -> str:
        code = getattr(socket, "close_code", None)
        reason = getattr(socket, "close_reason", "") or ""
        return f"code {code}{': ' + reason if reason else ''}" if code else "no close frame"

    def _route_many(self, frames: list) -> None:
        """Route the data frames of one read; sealed frames of batch-mode calls unparsed.

        A batch-mode call (the data layer's Execute) opens its frames together
        later (:meth:`Call.envelope_batches`), so here only the call id is read:
        from the fixed head of a v2 sealed frame with no metadata and a 16-byte
        IV, or from the start of a v1 ``{"invoke_id": N, "json_payload": …}``
        frame. Consecutive frames with the same head (a result's rows) go to
        their call as one run, with one comparison each. Every other frame takes
        the general path.
        """
        run: list = []
        run_call: Call | None = None
        run_head = b"\xff"  # no frame starts like this
        text = not self.session.binary
        for frame in frames:
            if frame.startswith(run_head) and (not text or frame.endswith(b'"}')):
                run.append(frame)
                continue
            if run:
                run_call._take_raw_many(run)
                run = []
            run_call, run_head = self._batch_call_of(frame, text)
            if run_call is not None:
                run.append(frame)
                continue
            run_head = b"\xff"
            try:
                self._route(frame.decode() if text else frame)
            except UnicodeDecodeError:
                logger.warning("dropped a text frame from the Volt that is not UTF-8")
            except Exception:  # noqa: BLE001 - never let one frame break the transport callback
                logger.exception("failed to route a frame from the Volt")
        if run:
            run_call._take_raw_many(run)

    def _batch_call_of(self, frame: bytes, text: bool) -> tuple[Call | None, bytes]:
        """The batch-mode call a sealed frame belongs to, and the head its call's frames share."""
        try:
            if text:
                if frame.startswith(b'{"invoke_id":') and frame.endswith(b'"}'):
                    comma = frame.find(b",", 13)
                    for key in (b'"json_payload":', b' "json_payload":'):
                        if frame.startswith(key, comma + 1):
                            head = frame[: comma + 1 + len(key)]
                            call = self._calls.get(int(frame[13:comma]))
                            break
                    else:
                        return None, b""
                else:
                    return None, b""
            elif frame[1] == PAYLOAD_FRAME and frame[10:13] == V2_USUAL_SEAL:
                head = frame[:13]
                call = self._calls.get(int.from_bytes(frame[2:10], "big"))
            else:
                return None, b""
        except (IndexError, ValueError):
            return None, b""
        if call is None or call._raw is None or call.ended:
            return None, b""
        return call, head

    def _route(self, frame: str | bytes) -> None:
        try:
            incoming = self.session.receive(frame)
        except ProtocolError as exc:
            logger.warning("dropped a malformed frame from the Volt: %s", exc)
            return
        call = self._calls.get(incoming.call_id) if incoming.call_id is not None else None
        if call is None:
            if incoming.kind == ENVELOPE_ERROR and incoming.call_id is None and len(self._calls) == 1:
                call = next(iter(self._calls.values()))  # the only call it can be about
            else:
                logger.debug("frame for call %s, which is not open", incoming.call_id)
                return
        if incoming.kind == KEY_EXCHANGE:
            try:
                frames = self.session.accept_key_exchange(incoming)
            except ProtocolError as exc:
                call._finish(exc)
                return
            for out in frames:  # queued now, so they precede any later send of this call
                self._enqueue(out)
            return
        call._feed(incoming, frame)

    # ------------------------------------------------------------------ writing

    def _enqueue(self, frame: str | bytes) -> asyncio.Future:
        """Queue a frame for the writer task; the future settles once it is sent.

        Every frame goes through this one queue, in the order the session made
        them: a v2 call's invoke, released by the key exchange inside the reader,
        can never be overtaken by a payload the caller sends right after.
        """
        future = asyncio.get_running_loop().create_future()
        if self._socket is None or self._writer is None or self._writer.done():
            future.set_exception(self._closed_error or ConnectionLostError("not connected to the Volt"))
            future.exception()  # a frame nobody waits for (key-exchange flush) must not warn
            return future
        self._outbox.append((frame, future))
        self._outbox_ready.set()
        return future

    async def _write(self, frame: str | bytes) -> None:
        await self._enqueue(frame)

    async def _write_frames(self, socket: ClientConnection) -> None:
        """The writer task: send queued frames in order; websockets paces the sends."""
        try:
            while True:
                while not self._outbox:
                    self._outbox_ready.clear()
                    await self._outbox_ready.wait()
                frame, future = self._outbox.popleft()
                await socket.send(frame)
                if not future.done():
                    future.set_result(None)
        except websockets.exceptions.ConnectionClosed as exc:
            self._fail_outbox(ConnectionLostError(f"connection to the Volt lost while sending: {exc}"))
        except asyncio.CancelledError:
            self._fail_outbox(self._closed_error or ConnectionLostError("the connection was closed"))
            raise

    def _fail_outbox(self, error: VoltError) -> None:
        while self._outbox:
            _, future = self._outbox.popleft()
            if not future.done():
                future.set_exception(error)
                future.exception()

    def _allocate(self, method: MethodInfo) -> Call:
        if not self.is_open:
            raise self._closed_error or ConnectionLostError("not connected to the Volt")
        call = Call(self, method, self._next_id)
        self._next_id += 1
        self._calls[call.id] = call
        return call

    async def start_call(
        self,
        method: MethodInfo,
        request: Any,
        *,
        defer_open: bool = False,
        batch_mode: bool = False,
        service_id: str | None = None,
    ) -> Call:
        """Open a call. ``request`` is checked against the schema before anything is sent.

        With ``defer_open`` (methods whose first message comes later, e.g.
        Connect), nothing is sent until the first :meth:`Call.send`.
        """
        body = None if defer_open and request is None else check_request(method, request)
        call = self._allocate(method)
        call._service_id = service_id
        call._invoked = False
        if batch_mode:
            call.take_frames_in_batches()
        if body is not None:
            try:
                await self._invoke(call, body)
            except VoltError as exc:
                call._finish(exc)
                raise
        if method.is_unary and body is not None:
            call.half_closed = True
            await self._write_many(self.session.send(call.id, envelope.encode_end(), client_end=True))
        if not call._opened.done():
            call._opened.set_result(None)
        return call

    async def _invoke(self, call: Call, body: dict) -> None:
        call._invoked = True
        frames = self.session.open_call(
            call.id,
            envelope.encode_invoke(call.method.path, orjson.dumps(body).decode(), call._service_id),
        )
        await self._write_many(frames)

    async def _write_many(self, frames: list) -> None:
        for frame in frames:
            await self._write(frame)

    async def _send_request(self, call: Call, request: Any) -> None:
        body = check_request(call.method, request)
        if not call._invoked:
            await self._invoke(call, body)
            return
        await self._write_many(self.session.send(call.id, envelope.encode_payload(orjson.dumps(body).decode())))

    async def _send_end(self, call: Call) -> None:
        if call.ended and call.id not in self._calls:
            return
        if not call._invoked:
            await self._invoke(call, {})
        await self._write_many(self.session.send(call.id, envelope.encode_end(), client_end=True))

    def _forget(self, call: Call) -> None:
        if self._calls.get(call.id) is call:
            del self._calls[call.id]
        self.session.forget(call.id)

    @property
    def open_calls(self) -> int:
        return len(self._calls)
