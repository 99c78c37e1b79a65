"""The local Volt's websocket endpoint: frames in, authenticated calls out to handlers.

One :class:`_Connection` per websocket reads every frame in a single loop and
feeds it to the sans-I/O :class:`~volt_data.protocol.ServerSession` (text frames
are v1, binary frames v2, on the same socket). A call that authenticates and
names a known method gets a :class:`_Call` (the :class:`~volt_data.local.call.ServerCall`
the handler sees) and runs as its own task, so a slow handler never stalls the
reader. Nothing a client sends can crash the reader: every frame's failure is
answered (envelope error or ``method_end`` error) and the connection goes on.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
import struct
from http import HTTPStatus
from typing import Any, Optional, Sequence

import orjson
from google.protobuf.message import Message
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from volt_data.errors import AuthenticationError, ProtocolError, RequestError
from volt_data.local.call import (
    INVALID_ARGUMENTS,
    STATUS_TEXT,
    UNIMPLEMENTED,
    Handler,
    Identity,
    StatusError,
)
from volt_data.protocol.batch_seal import payload_inners
from volt_data.protocol.envelope import END, INVOKE, encode_end, encode_payload, parse_inner
from volt_data.protocol.tokens import SeenTokens
from volt_data.protocol.session import ENVELOPE_ERROR, KEY_EXCHANGE, Caller, Incoming, ServerSession
from volt_data.schema import METHODS, MethodInfo, message_to_json_text, parse_message

__all__ = ["DEFAULT_MAX_SIZE", "VoltServer"]

logger = logging.getLogger("volt_data.local.server")

#: Largest frame accepted from a client. Responses are kept far smaller (the
#: 0.1.14 client drops the connection on frames over 1 MiB).
DEFAULT_MAX_SIZE = 16 * 1024 * 1024
#: A response frame larger than this breaks the published v1 client.
V1_CLIENT_FRAME_LIMIT = 1024 * 1024

_ENDED = encode_end()
#: How many ended call ids a connection remembers (to ignore late client frames).
_ENDED_MEMORY = 4096
#: ``send_many`` seals and writes at most about this many bytes of response text at once.
SEND_MANY_CHUNK_BYTES = 256 * 1024


def _status_json(code: int, description: str) -> str:
    return orjson.dumps(
        {"status": {"code": code, "message": STATUS_TEXT.get(code, "error"), "description": description}}
    ).decode()


def _response_text(response: Any) -> str:
    """JSON text of one response in any form the handler contract allows."""
    if type(response) is str:
        return response
    if isinstance(response, Message):
        return message_to_json_text(response)
    if isinstance(response, dict):
        status = response.get("status")
        if status is not None and not (isinstance(status, dict) and status.get("message")):
            # An empty status means success; v1 clients treat the mere key as failure.
            response = {k: v for k, v in response.items() if k != "status"}
        return orjson.dumps(response).decode()
    if isinstance(response, str):
        return str(response)
    raise TypeError(f"a response must be a protobuf message, dict or JSON str, not {type(response).__name__}")


class _Call:
    """One running call: the :class:`ServerCall` a handler reads from and writes to."""

    def __init__(self, connection: _Connection, generation: str, call_id: int,
                 method: MethodInfo, identity: Identity) -> None:
        self.method = method
        self.identity = identity
        self.generation = generation
        self.call_id = call_id
        self.task: Optional[asyncio.Task] = None
        self.ended = False
        self._connection = connection
        self._requests: asyncio.Queue = asyncio.Queue()
        self._client_done = False  # half-closed, or a unary request already delivered
        self._closed = False
        self._seal = connection.session.seal
        self._v1 = generation == "v1"
        websocket = connection.websocket
        self._send_frame = getattr(websocket, "send_message", websocket.send)
        self._framed = hasattr(websocket, "send_framed")  # the batch fast path (_CoalescingConnection)

    # ---- ServerCall

    async def receive(self) -> Optional[Message]:
        """The next request, or None once the client has half-closed."""
        if self._client_done and self._requests.empty():
            return None
        request = await self._requests.get()
        if request is None:
            self._client_done = True
        elif not self.method.client_streaming and self._requests.empty():
            self._client_done = True  # one request only: the next receive() is the end
        return request

    async def send(self, response: Any) -> None:
        """Seal one response as ``method_payload`` and write it (waits for the socket to drain)."""
        if self._closed:
            await self._cancel_sender()
        if self.ended:
            raise RuntimeError(f"call {self.call_id} has ended: nothing more can be sent")
        frame = self._seal(self.generation, self.call_id, encode_payload(_response_text(response)))
        if self._v1 and len(frame) > V1_CLIENT_FRAME_LIMIT:
            logger.warning("%s sent a %d-byte v1 frame: volt_client_web 0.1.x closes the connection "
                           "on frames over 1 MiB", self.method.path, len(frame))
        try:
            await self._send_frame(frame)
        except ConnectionClosed:
            await self._cancel_sender()

    async def send_many(self, responses: Sequence[Any]) -> None:
        """Send several responses, in order: the same frames as ``send`` for each, sealed
        in one batch and written in one go (waits for the socket to drain)."""
        if self._closed:
            await self._cancel_sender()
        if self.ended:
            raise RuntimeError(f"call {self.call_id} has ended: nothing more can be sent")
        texts = [r if type(r) is str else _response_text(r) for r in responses]
        if not texts:
            return
        session, websocket = self._connection.session, self._connection.websocket
        for index, chunk in enumerate(_chunks(texts, SEND_MANY_CHUNK_BYTES)):
            if index and self._closed:
                await self._cancel_sender()
            try:
                if self._framed and websocket.frames_writable() and not (
                        self._v1 and max(map(len, chunk)) > V1_CLIENT_FRAME_LIMIT // 4):
                    headers = _TEXT_HEADERS if self._v1 else _BINARY_HEADERS
                    await websocket.send_framed(session.seal_payloads(self.generation, self.call_id, chunk, headers))
                    continue
                # Any other state, and v1 rows long enough to break the 0.1.x client:
                # frame by frame, on the normal path.
                for frame in session.seal_many(self.generation, self.call_id, payload_inners(chunk)):
                    if self._v1 and len(frame) > V1_CLIENT_FRAME_LIMIT:
                        logger.warning("%s sent a %d-byte v1 frame: volt_client_web 0.1.x closes the "
                                       "connection on frames over 1 MiB", self.method.path, len(frame))
                    await self._send_frame(frame)
            except ConnectionClosed:
                await self._cancel_sender()

    async def _cancel_sender(self) -> None:
        """The client is gone: the sending task is cancelled, as on any disconnect.

        Handlers see one thing whatever the timing (``CancelledError`` at an
        await), so their cleanup (transaction rollback) lives in one place.
        """
        self.close()
        task = asyncio.current_task()
        if task is not None:
            task.cancel()
        await asyncio.sleep(0)
        raise asyncio.CancelledError

    @property
    def closed(self) -> bool:
        return self._closed

    # ---- transport side

    def deliver(self, request: Optional[Message]) -> None:
        if not self._client_done or request is None:
            self._requests.put_nowait(request)

    def close(self) -> None:
        """The client went away: wake the handler and mark the call closed."""
        if not self._closed:
            self._closed = True
            self._requests.put_nowait(None)


class _Connection:
    """One client websocket: its protocol session, its calls, and its reader loop."""

    def __init__(self, server: VoltServer, websocket: ServerConnection) -> None:
        state = server.state
        self.server = server
        self.websocket = websocket
        self.session = ServerSession(
            state.volt_id,
            rsa_private_key=state.rsa_key,
            ed25519_private_key=state.ed25519_key,
            v1_keys=state.v1_public_key,
            v2_keys=state.v2_public_key,
            seen_tokens=server.seen_tokens,
        )
        self.callers: dict[tuple[str, int], Caller] = {}  # authenticated, waiting for method_invoke
        self.calls: dict[tuple[str, int], _Call] = {}
        self.ended: dict[tuple[str, int], None] = {}  # insertion-ordered, bounded

    async def run(self) -> None:
        try:
            async for frame in self.websocket:
                try:
                    await self.handle(frame)
                except ProtocolError as exc:
                    generation = "v1" if isinstance(frame, str) else "v2"
                    logger.warning("bad %s frame: %s", generation, exc)
                    await self.send(self.session.envelope_error(generation, None, str(exc)))
        except ConnectionClosed:
            pass
        finally:
            await self.close_calls()

    async def send(self, frame) -> None:
        try:
            await self.websocket.send(frame)
        except ConnectionClosed:
            pass

    async def close_calls(self) -> None:
        calls = list(self.calls.values())
        self.calls.clear()
        for call in calls:
            call.close()
            if call.task is not None:
                call.task.cancel()
        tasks = [c.task for c in calls if c.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    # ------------------------------------------------------------ frames

    async def handle(self, frame) -> None:
        generation, incoming = self.session.receive(frame)
        key = (generation, incoming.call_id)
        if incoming.kind == ENVELOPE_ERROR:
            logger.info("client reported an envelope error on call %s: %s", incoming.call_id, incoming.error)
            return
        if incoming.kind == KEY_EXCHANGE:
            await self.key_exchange(key, incoming)
            return
        call = self.calls.get(key)
        if call is not None:
            await self.for_running_call(call, incoming)
        elif key in self.callers:
            await self.first_message(key, self.callers.pop(key), incoming)
        elif key in self.ended:
            logger.debug("ignoring a frame for ended call %s %s", *key)
        elif generation == "v1" and incoming.token is not None:
            caller, refusal = self.authenticate_v1(key, incoming)
            if caller is not None:
                await self.first_message(key, caller, incoming)
            else:
                await self.send(refusal)
        else:
            # No call of that id was authenticated on this connection (e.g. a frame
            # copied from another connection): refused without decrypting anything.
            logger.warning("refused a %s frame for call %s, which is not open on this connection",
                           generation, incoming.call_id)
            await self.send(self.session.envelope_error(generation, incoming.call_id,
                                                        f"call {incoming.call_id} is not open"))

    def authenticate_v1(self, key, incoming: Incoming) -> tuple[Optional[Caller], Any]:
        """(caller, None) for an accepted v1 call; (None, refusal frame) otherwise."""
        try:
            return self.session.accept_v1_call(incoming), None
        except (AuthenticationError, ProtocolError) as exc:
            logger.warning("refused v1 call %s: %s", incoming.call_id, exc)
            self.remember_ended(key)
            return None, self.session.refuse_v1_call(incoming.call_id, exc, f"unauthenticated: {exc}")

    async def key_exchange(self, key, incoming: Incoming) -> None:
        if key in self.calls or key in self.callers:
            await self.send(self.session.envelope_error("v2", incoming.call_id,
                                                        f"call {incoming.call_id} is already open"))
            return
        try:
            caller, reply = self.session.accept_v2_call(incoming)
        except (AuthenticationError, ProtocolError) as exc:
            logger.warning("refused v2 call %s: %s", incoming.call_id, exc)
            self.remember_ended(key)
            await self.send(self.session.envelope_error("v2", incoming.call_id, f"unauthenticated: {exc}"))
            return
        self.ended.pop(key, None)  # a client may reuse an id after a fresh key exchange
        self.callers[key] = caller
        await self.send(reply)

    def _open(self, key, incoming: Incoming):
        """Decrypt and parse one sealed frame; a failure aborts the call with an envelope error."""
        return parse_inner(self.session.open(key[0], key[1], [incoming])[0])

    async def first_message(self, key, caller: Caller, incoming: Incoming) -> None:
        generation, call_id = key
        try:
            inner = self._open(key, incoming)
        except ProtocolError as exc:
            await self.abort(key, None, str(exc))
            return
        if inner.kind != INVOKE:
            await self.end_early(key, "the first message of a call must be method_invoke")
            return
        method = METHODS.get(inner.method or "")
        if method is None:
            await self.end_early(key, f"unknown method {inner.method}")
            return
        handler = self.server.handler_for(method.path)
        if handler is None:
            description = f"{method.path} is not implemented by the local Volt"
            await self.end_early(key, None, _status_json(UNIMPLEMENTED, description))
            return
        identity = self.server.identity_for(caller)
        if identity is None:  # registry changed between the token check and now
            await self.end_early(key, "unauthenticated: the identity is no longer registered")
            return
        try:
            request = parse_message(method.request_class, inner.json or "{}")
        except RequestError as exc:
            await self.end_early(key, None, _status_json(INVALID_ARGUMENTS, _field_description(exc)))
            return
        call = _Call(self, generation, call_id, method, identity)
        self.calls[key] = call
        call.deliver(request)
        if incoming.client_end:
            call.deliver(None)
        call.task = asyncio.get_running_loop().create_task(
            self.run_handler(call, handler), name=f"volt call {generation}:{call_id} {method.name}"
        )

    async def for_running_call(self, call: _Call, incoming: Incoming) -> None:
        key = (call.generation, call.call_id)
        try:
            inner = self._open(key, incoming)
        except ProtocolError as exc:
            await self.abort(key, call, str(exc))
            return
        if inner.kind == END:
            call.deliver(None)
        elif inner.kind == INVOKE:
            await self.abort(key, call, "method_invoke sent twice on one call", envelope=False)
        else:
            try:
                request = parse_message(call.method.request_class, inner.json or "{}")
            except RequestError as exc:
                await self.abort(key, call, None, envelope=False,
                                 status=_status_json(INVALID_ARGUMENTS, _field_description(exc)))
                return
            call.deliver(request)
            if incoming.client_end:
                call.deliver(None)

    # ------------------------------------------------------------ endings

    def remember_ended(self, key) -> None:
        self.ended[key] = None
        if len(self.ended) > _ENDED_MEMORY:
            del self.ended[next(iter(self.ended))]

    async def end_early(self, key, error: Optional[str], status: Optional[str] = None) -> None:
        """End a call that never reached a handler: optional status payload, then method_end."""
        generation, call_id = key
        frames = []
        if status is not None:
            frames.append(self.session.seal(generation, call_id, encode_payload(status)))
        frames.append(self.session.seal(generation, call_id, encode_end(error) if error else _ENDED))
        self.session.forget(generation, call_id)
        self.remember_ended(key)
        if error:
            logger.info("call %s:%s ended: %s", generation, call_id, error)
        for frame in frames:
            await self.send(frame)

    async def abort(self, key, call: Optional[_Call], error: Optional[str], *,
                    envelope: bool = True, status: Optional[str] = None) -> None:
        """Stop a call after a bad frame: cancel its handler, tell the client, forget its keys."""
        generation, call_id = key
        if call is not None:
            call.ended = True
            self.calls.pop(key, None)
            if call.task is not None:
                call.task.cancel()
        if envelope:
            logger.warning("call %s:%s aborted: %s", generation, call_id, error)
            self.session.forget(generation, call_id)
            self.remember_ended(key)
            await self.send(self.session.envelope_error(generation, call_id, error or "bad frame"))
        else:
            await self.end_early(key, error, status)

    async def run_handler(self, call: _Call, handler: Handler) -> None:
        key = (call.generation, call.call_id)
        error: Optional[str] = None
        try:
            await handler(call)
        except StatusError as exc:
            if not call.ended and not call.closed:
                try:
                    await call.send(exc.to_json())
                except ConnectionClosed:
                    return
        except ConnectionClosed:
            return
        except asyncio.CancelledError:
            if call.ended or call.closed:
                return
            raise
        except Exception as exc:  # a handler bug must not take the connection down
            if call.closed:
                return
            logger.exception("handler of %s failed", call.method.path)
            error = f"internal error: {exc}"
        if call.ended or call.closed:
            return
        call.ended = True
        self.calls.pop(key, None)
        try:
            frame = self.session.seal(call.generation, call.call_id, encode_end(error) if error else _ENDED)
        finally:
            self.session.forget(call.generation, call.call_id)
            self.remember_ended(key)
        await self.send(frame)


def _chunks(texts: list[str], limit: int) -> list[list[str]]:
    """``texts`` cut into consecutive runs of about ``limit`` characters (at least one text each)."""
    total = sum(map(len, texts))
    if total <= limit:
        return [texts]
    chunks, chunk, size = [], [], 0
    for text in texts:
        if chunk and size + len(text) > limit:
            chunks.append(chunk)
            chunk, size = [], 0
        chunk.append(text)
        size += len(text)
    chunks.append(chunk)
    return chunks


def _field_description(exc: RequestError) -> str:
    text = str(exc)
    if exc.field and exc.field not in text:
        text = f"{text} (field '{exc.field}')"
    return text


class _FrameHeaders(dict):
    """Length -> the header of an unmasked, unfragmented data frame (RFC 6455 §5.2):
    what ``_CoalescingConnection.send_framed`` writes before each message."""

    def __init__(self, opcode: int) -> None:
        super().__init__()
        self.first = 0x80 | opcode  # FIN

    def __missing__(self, length: int) -> bytes:
        if length < 126:
            header = struct.pack("!BB", self.first, length)
        elif length < 65536:
            header = struct.pack("!BBH", self.first, 126, length)
        else:
            header = struct.pack("!BBQ", self.first, 127, length)
        if len(self) < 4096:
            self[length] = header
        return header


_TEXT_HEADERS = _FrameHeaders(0x1)
_BINARY_HEADERS = _FrameHeaders(0x2)


class _CoalescingConnection(ServerConnection):
    """A server connection that writes the frames of one event-loop turn in one go.

    ``websockets`` writes every frame to the socket as it is sent, one system
    call each; for a stream of small row frames that call is most of the cost.
    Here frames queue until the end of the loop turn (or until 64 KiB are
    waiting) and then go out in a single write. Flow control is unchanged: once
    the transport's buffer is full, ``send()`` waits for it to drain. Outside the
    OPEN state (handshake, closing) data is written at once, as usual.
    """

    FLUSH_BYTES = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._outgoing: list[bytes] = []
        self._outgoing_bytes = 0
        self._flush_scheduled = False
        self._yield_due = False

    def send_data(self) -> None:
        chunks = self.protocol.data_to_send()
        if self.protocol.state is not State.OPEN or not all(chunks):
            self._flush()
            for data in chunks:
                if data:
                    self.transport.write(data)
                elif self.transport.can_write_eof():  # end of stream: half-close TCP
                    try:
                        self.transport.write_eof()
                    except Exception:  # noqa: BLE001 - as websockets does: best effort
                        pass
                else:
                    self.transport.close()
            return
        self._outgoing.extend(chunks)
        self._outgoing_bytes += sum(map(len, chunks))
        if self._outgoing_bytes >= self.FLUSH_BYTES:
            self._flush()
            self._yield_due = True  # a producer this fast must still let the loop read
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    async def send_message(self, message: str | bytes) -> None:
        """Send one complete message (text for str, binary for bytes).

        The hot path for response frames: while the connection is open and no
        fragmented message is in progress, this skips ``send()``'s per-message
        context manager, which costs more than sealing a row frame.
        """
        if self.protocol.state is not State.OPEN or self.send_in_progress is not None:
            await self.send(message)
            return
        if type(message) is str:
            self.protocol.send_text(message.encode())
        else:
            self.protocol.send_binary(message)
        self.send_data()
        if self.paused:
            await self.drain()
        elif self._yield_due:
            # The peer keeps up, so drain() never waits; without this a tight
            # producer would starve the reader (close frames, other calls).
            self._yield_due = False
            await asyncio.sleep(0)

    def frames_writable(self) -> bool:
        """Whether :meth:`send_framed` may be used now.

        While the connection is open, no fragmented message is in progress and
        no extension is active, a server-to-client data message is just one
        frame, ``FIN|opcode, length, payload`` (servers do not mask, RFC 6455
        §5.1), which a caller can build for a whole batch of messages at once
        instead of going through ``websockets``' framing message by message
        (which costs more than sealing a row). In any other state messages must
        take the normal path (``send_message``; it raises ``ConnectionClosed``
        once the connection is closing).
        """
        protocol = self.protocol
        return (protocol.state is State.OPEN and self.send_in_progress is None
                and not protocol.expect_continuation_frame and not protocol.extensions)

    async def send_framed(self, data: bytes) -> None:
        """Write complete data frames built by the caller (see :meth:`frames_writable`).

        Flow control is that of :meth:`send_message`: wait for the drain while
        the transport is paused, and yield to the loop after every flush so
        that the reader keeps running.
        """
        if self.protocol.writes:  # e.g. a pong queued by the reader: it goes first
            self.send_data()
        self._outgoing.append(data)
        self._outgoing_bytes += len(data)
        if self._outgoing_bytes >= self.FLUSH_BYTES:
            self._flush()
            self._yield_due = True
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        if self.paused:
            await self.drain()
        elif self._yield_due:
            self._yield_due = False
            await asyncio.sleep(0)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._outgoing:
            return
        data = self._outgoing[0] if len(self._outgoing) == 1 else b"".join(self._outgoing)
        self._outgoing.clear()
        self._outgoing_bytes = 0
        if not self.transport.is_closing():
            self.transport.write(data)


class VoltServer:
    """The websocket listener of a local Volt, bound to its state and its handlers.

    ``handler_for(path)`` gives the handler of a method path (None: unimplemented);
    identities come from ``state`` (by v1 key fingerprint or v2 session id).
    """

    def __init__(self, state, services, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.seen_tokens = SeenTokens()  # shared by every connection: a token opens one call
        self.state = state
        self.services = services
        self.max_size = max_size
        self._server: Optional[Server] = None
        self._connections: set[_Connection] = set()
        self.http_address: Optional[str] = None

    def handler_for(self, method_path: str) -> Optional[Handler]:
        return self.services.handler_for(method_path)

    def identity_for(self, caller: Caller) -> Optional[Identity]:
        record = (self.state.by_fingerprint(caller.key_id) if caller.generation == "v1"
                  else self.state.by_session(caller.key_id))
        return None if record is None else record.identity(caller.generation)

    async def start(self, host: str, port: int, ssl_context: Optional[ssl.SSLContext] = None) -> int:
        """Listen on ``host:port`` (0 picks a free port); returns the bound port."""
        self._server = await serve(
            self._serve_connection,
            host,
            port,
            ssl=ssl_context,
            max_size=self.max_size,
            compression=None,  # ciphertext does not compress
            process_request=self._process_request,
            ping_interval=20,
            ping_timeout=20,
            create_connection=_CoalescingConnection,
        )
        bound = next(iter(self._server.sockets)).getsockname()[1]
        scheme = "https" if ssl_context is not None else "http"
        shown_host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        shown_host = f"[{shown_host}]" if ":" in shown_host else shown_host
        self.http_address = f"{scheme}://{shown_host}:{bound}"
        return bound

    async def stop(self) -> None:
        """Close every connection (open calls are cancelled) and stop listening."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close(close_connections=True)
        await server.wait_closed()

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def _serve_connection(self, websocket: ServerConnection) -> None:
        connection = _Connection(self, websocket)
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)

    def _process_request(self, connection: ServerConnection, request: Request) -> Optional[Response]:
        """Answer ``GET /discover`` with the Volt's config; every other path upgrades."""
        if request.path.split("?", 1)[0].rstrip("/") != "/discover":
            return None
        body = orjson.dumps(self.discovery()).decode()
        response = connection.respond(HTTPStatus.OK, body)
        del response.headers["Content-Type"]  # Headers is a multi-dict: replace, not add
        response.headers["Content-Type"] = "application/json"
        return response

    def discovery(self) -> dict:
        """The Volt config object of protocol reference §2 (Ed25519 key: the current generation)."""
        address = self.http_address or ""
        return {
            "id": self.state.volt_id,
            "display_name": self.state.display_name,
            "public_key": self.state.public_key_pem("v2"),
            "fingerprint": self.state.fingerprint("v2"),
            "address": address.split("://", 1)[-1],
            "http_address": address,
            "ca_pem": self.state.tls.ca_pem,
        }
