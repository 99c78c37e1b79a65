"""A minimal client for driving the local Volt's transport in tests.

It is the protocol core's client session over a real ``websockets`` connection:
open a call, send the invoke (and optionally more payloads / a half-close),
read frames until that call's ``method_end`` or an envelope error. No library
client code is involved, so transport behaviour is tested on its own.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from websockets.asyncio.client import connect

from volt_data.protocol import crypto
from volt_data.protocol.envelope import encode_end, encode_invoke, encode_payload, parse_inner
from volt_data.protocol.session import ENVELOPE_ERROR, KEY_EXCHANGE, client_session_for

GET_RESOURCE = "/tdx.volt_api.volt.v1.VoltAPI/GetResource"
CREATE_DATABASE = "/tdx.volt_api.data.v1.SqliteServerAPI/CreateDatabase"
SUBSCRIBE_WIRE = "/tdx.volt_api.volt.v1.WireAPI/SubscribeWire"


@dataclass
class Outcome:
    """What came back for one call."""

    responses: list = field(default_factory=list)  # parsed response JSON objects
    ended: bool = False
    end_error: str | None = None
    envelope_error: str | None = None


def session_for(config: dict, **overrides):
    """A protocol-core client session built from a fusebox config (``overrides`` win)."""
    key = serialization.load_pem_private_key(config["credential"]["key"].encode(), password=None)
    volt_key = serialization.load_pem_public_key(config["volt"]["public_key"].encode())
    options = {"session_id": config["credential"].get("session_id")}
    options.update(overrides)
    audience = options.pop("audience", config["volt"]["id"])
    private_key = options.pop("private_key", key)
    return client_session_for(private_key, volt_key, audience, **options)


def ws_url(config: dict, path: str = "/api") -> str:
    base = config["volt"]["http_address"].replace("http", "ws", 1)
    return base + path


class Wire:
    """One websocket plus any number of client sessions (v1 and v2 may share it)."""

    def __init__(self, websocket) -> None:
        self.websocket = websocket
        self.next_id = 1
        self.inbox: dict = {}  # (generation, call id) -> frames read while awaiting another call

    @classmethod
    async def open(cls, url: str, **kwargs) -> Wire:
        return cls(await connect(url, max_size=None, **kwargs))

    async def close(self) -> None:
        await self.websocket.close()

    async def start(self, session, method: str, request: dict | str | None = None, *, call_id=None) -> int:
        """Open a call (v2: completes the key exchange first); returns its id."""
        call_id = call_id or self._allocate()
        text = request if isinstance(request, str) else json.dumps(request or {})
        for frame in session.open_call(call_id, encode_invoke(method, text)):
            await self.websocket.send(frame)
        if session.generation == "v2":
            frame = await self._next_frame_for(session, call_id)
            reply = session.receive(frame)
            if reply.kind != KEY_EXCHANGE:  # refused: finish() reads the envelope error
                self.inbox.setdefault(("v2", call_id), []).insert(0, frame)
                return call_id
            for frame in session.accept_key_exchange(reply):
                await self.websocket.send(frame)
        return call_id

    async def send(self, session, call_id: int, request: dict) -> None:
        for frame in session.send(call_id, encode_payload(json.dumps(request))):
            await self.websocket.send(frame)

    async def half_close(self, session, call_id: int) -> None:
        for frame in session.send(call_id, encode_end(), client_end=True):
            await self.websocket.send(frame)

    async def finish(self, session, call_id: int, *, timeout: float = 5.0) -> Outcome:
        """Read this call's frames until its end (or an envelope error)."""
        outcome = Outcome()
        while True:
            incoming = await asyncio.wait_for(self._next_for(session, call_id), timeout)
            if incoming.kind == ENVELOPE_ERROR:
                outcome.envelope_error = incoming.error
                return outcome
            inner = parse_inner(session.open(call_id, [incoming])[0])
            if inner.kind == "end":
                outcome.ended, outcome.end_error = True, inner.error
                return outcome
            outcome.responses.append(json.loads(inner.json))

    async def call(self, session, method: str, request: dict | str | None = None, **kwargs) -> Outcome:
        """A whole unary-style call: invoke, half-close (as clients do), read to the end."""
        call_id = await self.start(session, method, request)
        if session.is_ready(call_id):
            await self.half_close(session, call_id)
        return await self.finish(session, call_id, **kwargs)

    def unclaimed(self, generation: str, call_id: int) -> list:
        """Frames that arrived for a call nobody waited for."""
        return self.inbox.get((generation, call_id), [])

    async def _next_for(self, session, call_id: int):
        return session.receive(await self._next_frame_for(session, call_id))

    async def _next_frame_for(self, session, call_id: int):
        waiting = self.inbox.get((session.generation, call_id))
        if waiting:
            return waiting.pop(0)
        while True:
            frame = await self.websocket.recv()
            generation = "v1" if isinstance(frame, str) else "v2"
            if generation == session.generation:
                incoming = session.receive(frame)
                if incoming.call_id == call_id or (incoming.kind == ENVELOPE_ERROR and not incoming.call_id):
                    return frame
                frame_id = incoming.call_id
            else:
                frame_id = None
            self.inbox.setdefault((generation, frame_id), []).append(frame)

    def _allocate(self) -> int:
        call_id, self.next_id = self.next_id, self.next_id + 1
        return call_id


def stranger_keys(generation: str):
    """A private key the Volt has never seen, of the generation's type."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if generation == "v1":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ed25519.Ed25519PrivateKey.generate()


def fingerprint_of(config: dict) -> str:
    key = serialization.load_pem_private_key(config["credential"]["key"].encode(), password=None)
    return crypto.fingerprint_v1(key.public_key())
