"""An in-process ServerCall for driving the local Volt's handlers in tests.

It follows the handler contract of ``volt_data.local.call`` (requests parsed
from proto3 JSON by the schema layer, responses in any of the three accepted
forms, StatusError turned into a ``status`` response) without any transport.
"""
from __future__ import annotations

import asyncio
from typing import Any

import orjson
from google.protobuf.message import Message

from volt_data.local.call import Identity, StatusError
from volt_data.schema import METHODS, message_to_json, parse_message

OWNER = Identity(id="owner-id", name="owner", access="owner")
WRITER = Identity(id="writer-id", name="writer", access="write")
OTHER_WRITER = Identity(id="other-writer-id", name="other", access="write")
READER = Identity(id="reader-id", name="reader", access="read")
IDENTITIES = (OWNER, WRITER, OTHER_WRITER, READER)


class InProcessCall:
    """One call: an asyncio.Queue of requests in, a list of JSON responses out."""

    def __init__(self, path: str, identity: Identity) -> None:
        self.method = METHODS[path]
        self.identity = identity
        self.requests: asyncio.Queue = asyncio.Queue()
        self.responses: list[dict] = []
        self._arrived = asyncio.Event()
        self._closed = False

    async def receive(self) -> Message | None:
        return await self.requests.get()

    async def send(self, response: Any) -> None:
        if isinstance(response, Message):
            response = message_to_json(response)
        elif isinstance(response, str):
            response = orjson.loads(response)
        assert isinstance(response, dict), response
        self.responses.append(response)
        self._arrived.set()
        await asyncio.sleep(0)

    @property
    def closed(self) -> bool:
        return self._closed

    def push(self, request: dict) -> None:
        """Queue one request as the client would send it (proto3 JSON)."""
        self.requests.put_nowait(parse_message(self.method.request_class, request))

    def half_close(self) -> None:
        self.requests.put_nowait(None)

    def disconnect(self) -> None:
        self._closed = True
        self.requests.put_nowait(None)

    async def wait_for(self, count: int, timeout: float = 3.0) -> list[dict]:
        """Wait until ``count`` responses have arrived; returns them all."""
        async def until() -> None:
            while len(self.responses) < count:
                self._arrived.clear()
                await self._arrived.wait()

        await asyncio.wait_for(until(), timeout)
        return self.responses


async def serve(handler, call: InProcessCall) -> None:
    """Run a handler as the transport would: a StatusError becomes a status response."""
    try:
        await handler(call)
    except StatusError as error:
        call.responses.append(error.to_json())


async def call_method(services, path: str, identity: Identity, *requests: dict) -> list[dict]:
    """Send ``requests``, half-close, run the handler to its end; returns the responses."""
    call = InProcessCall(path, identity)
    for request in requests:
        call.push(request)
    call.half_close()
    handler = services.handler_for(path)
    assert handler is not None, path
    await asyncio.wait_for(serve(handler, call), 10)
    return call.responses


def status_code(responses: list[dict]) -> int | None:
    """The code of the last response's status, if it has one."""
    status = responses[-1].get("status") if responses else None
    return None if status is None else status["code"]
