"""A websocket client connection that hands data frames straight to the Volt connection.

``websockets`` delivers every received message through its own queue: the
protocol parser makes a ``Frame`` object, the assembler queues it, and a reader
task awaits it, once per message. A query result is one small frame per row, so
that path alone caps a client at roughly 125k messages per second, below what
the local Volt sends.

:class:`RoutingClientConnection` keeps ``websockets`` for everything that makes
the connection correct — the handshake, pings, the closing handshake, errors —
and only takes over the common case: once routing is on, each chunk the
transport reads is split into complete, unfragmented text and binary frames
right here, and the payloads go to one callback per chunk. The first frame that
is anything else (a fragment, a close frame, a masked or oversized frame, text
that is not UTF-8) and everything after it is handed back to ``websockets``,
unchanged and in order, so its handling (and its error codes) apply exactly as
usual; pings and pongs are handed over one complete frame at a time.

Routing is switched on right after the opening handshake, when the Volt has
sent nothing yet (it never speaks first), so the split always starts at a frame
boundary. Memory: the assembler's flow control (pause reading when messages
pile up) does not apply to routed frames; the Volt connection's single reader
never held frames back either — each call keeps what is routed to it.
"""
from __future__ import annotations

import struct
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection
from websockets.protocol import State

_TEXT, _BINARY = 0x81, 0x82  # FIN set, no reserved bits, opcode 1 or 2
_PING, _PONG = 0x89, 0x8A
_HEAD16 = struct.Struct(">BBH")  # first byte, second byte, 16-bit extended length


class RoutingClientConnection(ClientConnection):
    """A :class:`ClientConnection` whose data frames can be routed without the message queue."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._route: Callable[[list], None] | None = None
        self._raw_text = False
        # The start of a frame whose rest has not arrived yet, and how many bytes it
        # needs before it is worth looking at again (a large frame comes in many reads).
        self._partial: bytearray | None = None
        self._needed = 0

    def route_messages_to(self, route: Callable[[list], None], *, raw_text: bool = False) -> bool:
        """Send every later data message to ``route`` (a list per chunk read: str for
        text, bytes for binary). False, and nothing changes, unless the connection is
        open with no received bytes waiting.

        With ``raw_text`` (for a peer that only sends text), text messages come as
        their undecoded UTF-8 bytes, so the receiver can slice and join them as
        bytes; it must check them itself. A binary message is then handed back.
        """
        if self.protocol.state is not State.OPEN or self.protocol.reader.buffer:
            return False
        self._route = route
        self._raw_text = raw_text
        return True

    def data_received(self, data: bytes) -> None:
        route = self._route
        if route is None:
            super().data_received(data)
            return
        if self._partial is not None:
            self._partial += data
            if len(self._partial) < self._needed:
                return
            data, self._partial = bytes(self._partial), None
        limit = self.protocol.max_message_size
        raw_text = self._raw_text
        messages: list = []
        append = messages.append
        position, size = 0, len(data)
        needed = 2
        # The hot loop: whole frames of the routed kind with a 16-bit length (row
        # frames: 126-65535 bytes), one unpack each. Anything else, or a frame that
        # is not all here, drops to the general step below, one frame at a time.
        wanted = _TEXT if raw_text else _BINARY
        fast_lengths_ok = limit is None or limit >= 0xFFFF
        unpack = _HEAD16.unpack_from
        while size - position >= 2:
            while size - position >= 4 and fast_lengths_ok:
                first, second, length = unpack(data, position)
                end = position + 4 + length
                if first != wanted or second != 126 or end > size:
                    break
                append(data[position + 4 : end])
                position = end
            if size - position < 2:
                break
            first, length = data[position], data[position + 1]
            if length & 0x80:  # masked: the Volt must not mask, websockets refuses it
                self._hand_back(messages, data[position:])
                return
            head = 2
            if length >= 126:  # 126: a 16-bit length follows, 127: a 64-bit one
                head = 4 if length == 126 else 10
                if size - position < head:
                    needed = head
                    break
                length = int.from_bytes(data[position + 2 : position + head], "big")
            if limit is not None and length > limit:
                self._hand_back(messages, data[position:])  # websockets refuses it (1009)
                return
            end = position + head + length
            if end > size:
                needed = end - position
                break
            if first == wanted:
                append(data[position + head : end])
            elif first == _TEXT:
                try:
                    append(data[position + head : end].decode())
                except UnicodeDecodeError:
                    self._hand_back(messages, data[position:])  # websockets refuses it (1007)
                    return
            elif first == _PING or first == _PONG:
                if messages:
                    route(messages)
                    messages = []
                    append = messages.append
                super().data_received(data[position:end])  # websockets answers pings
            else:
                self._hand_back(messages, data[position:])
                return
            position = end
        if messages:
            route(messages)
        if position < size:
            self._partial, self._needed = bytearray(data[position:]), needed

    def _hand_back(self, messages: list, rest: bytes) -> None:
        """Route what was split so far, then give ``rest`` and all later data to websockets."""
        route, self._route = self._route, None
        if messages:
            route(messages)
        super().data_received(rest)

    def eof_received(self) -> bool | None:
        if self._partial is not None:  # a frame cut short: let websockets see it and report the truncation
            partial, self._partial = bytes(self._partial), None
            self._route = None
            super().data_received(partial)
        return super().eof_received()
