"""The contract between the local Volt's transport and its API handlers.

The transport (``volt_data.local.server``) decodes frames, authenticates each
call and hands a :class:`ServerCall` to the handler registered for the method.
Handlers (``volt_data.local.services``) never see frames or keys: they read
parsed requests, write responses, and raise :class:`StatusError` to answer a
request with a ``status``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol, Sequence, Union

from google.protobuf.message import Message

from volt_data.schema import MethodInfo

#: Status codes (gRPC numbering) and the message text the Volt pairs with each.
INVALID_ARGUMENTS = 3
NOT_FOUND = 5
ALREADY_EXISTS = 6
PERMISSION_DENIED = 7
FAILED_PRECONDITION = 9
ABORTED = 10
UNIMPLEMENTED = 12
INTERNAL = 13
UNAUTHENTICATED = 16

STATUS_TEXT = {
    INVALID_ARGUMENTS: "invalidArguments",
    NOT_FOUND: "notFound",
    ALREADY_EXISTS: "alreadyExists",
    PERMISSION_DENIED: "permissionDenied",
    FAILED_PRECONDITION: "failedPrecondition",
    ABORTED: "aborted",
    UNIMPLEMENTED: "unimplemented",
    INTERNAL: "internal",
    UNAUTHENTICATED: "unauthenticated",
}

ACCESS_LEVELS = ("read", "write", "owner")


class StatusError(Exception):
    """Raised by a handler to answer with ``{"status": {code, message, description}}``.

    The transport sends that status as a response payload and then ends the
    call normally (``method_end`` without error), which is how the Volt reports
    request-level failures.
    """

    def __init__(self, code: int, description: str, message: str | None = None) -> None:
        self.code = code
        self.message = message or STATUS_TEXT.get(code, "error")
        self.description = description
        super().__init__(f"{self.message}: {description}")

    def to_json(self) -> dict[str, Any]:
        return {"status": {"code": self.code, "message": self.message, "description": self.description}}


@dataclass(frozen=True)
class Identity:
    """A registered client identity, as the handlers see it.

    ``id`` is the identity's client id; its home folder resource has the same id.
    ``access`` is one of ``ACCESS_LEVELS`` and applies Volt-wide: ``owner`` may do
    anything, ``write`` may read and change what it owns or was granted, ``read``
    may only read.
    """

    id: str
    name: str
    access: str
    protocol: str = "v2"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def can_write(self) -> bool:
        return self.access in ("write", "owner")

    @property
    def is_owner(self) -> bool:
        return self.access == "owner"


Response = Union[Message, dict, str]


class ServerCall(Protocol):
    """One authenticated call, as a handler sees it."""

    method: MethodInfo
    identity: Identity

    async def receive(self) -> Message | None:
        """The next request message (an instance of ``method.request_class``),
        or ``None`` once the client has half-closed. For unary methods the
        first ``receive()`` returns the single request."""

    async def send(self, response: Response) -> None:
        """Send one response message: a protobuf message, a proto3-JSON dict, or
        an already-encoded JSON string (the hot path for rows). Waits while the
        socket's write buffer is full, so a fast producer is paced by the client."""

    async def send_many(self, responses: Sequence[Response]) -> None:
        """Send several responses in order, exactly as ``send`` would one by one,
        but sealed and written as one batch (the hot path for result rows). Waits
        like ``send``. Callers keep batches to what may go out before they next
        look at requests or ``closed`` (a page, at most)."""

    @property
    def closed(self) -> bool:
        """True once the client cancelled the call or the connection went away;
        long-running producers check it and stop."""


Handler = Callable[[ServerCall], Awaitable[None]]


async def send_all(call: ServerCall, responses: Sequence[Response]) -> None:
    """``call.send_many(responses)``, or one ``send`` each for a ServerCall without it."""
    send_many = getattr(call, "send_many", None)
    if send_many is not None:
        await send_many(responses)
        return
    for response in responses:
        await call.send(response)
