"""The exceptions volt_data raises. Every one derives from :class:`VoltError`.

The hierarchy is flat on purpose (as in httpx/websockets): callers catch
``VoltError`` for "anything went wrong with the Volt", or one subclass for a
specific reaction (fix the config, fix the request, retry the connection).
"""
from __future__ import annotations


class VoltError(Exception):
    """Base class of every error raised by volt_data."""


class ConfigError(VoltError):
    """The client configuration is missing a field or has a bad value.

    ``field`` names the offending key path, e.g. ``"volt.public_key"``.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PassphraseError(ConfigError):
    """The private key is encrypted and the passphrase is missing or wrong."""


class RequestError(VoltError):
    """A call was refused before anything was sent: unknown method, or a request
    that does not match the method's schema. ``field`` names the bad field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ProtocolError(VoltError):
    """A frame could not be decoded, decrypted or verified.

    Raised by the sans-I/O protocol core on either side of the connection.
    """


class AuthenticationError(ProtocolError):
    """A call token was refused: bad signature, unknown key, wrong audience or
    outside its validity window."""


class CallError(VoltError):
    """The Volt reported that a call failed.

    ``kind`` says how: ``"status"`` (a response carried a ``status`` with a
    message; ``code`` and ``description`` come from it), ``"end"`` (the call
    ended with ``method_end.error``) or ``"envelope"`` (the frame envelope
    carried an error before the call could run).
    """

    def __init__(
        self,
        message: str,
        *,
        code: int = 0,
        description: str = "",
        kind: str = "status",
        method: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.description = description
        self.kind = kind
        self.method = method

    def __str__(self) -> str:
        text = self.message
        if self.description and self.description != self.message:
            text = f"{text}: {self.description}"
        if self.code:
            text = f"{text} (code {self.code})"
        if self.method:
            text = f"{self.method}: {text}"
        return text


class ConnectionLostError(VoltError):
    """The websocket closed or broke while calls were open."""


class CallCancelledError(VoltError):
    """The call was cancelled locally (``cancel()``, Ctrl-C) before it finished."""


class CallTimeoutError(VoltError, TimeoutError):
    """A call did not finish within its timeout; it was cancelled on the server."""
