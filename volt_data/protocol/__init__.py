"""The Volt websocket protocol, sans I/O.

Everything here turns bytes into values and values into bytes: keys and
fingerprints, call tokens, the encrypted inner messages, and the frame layouts
of both generations (v1: JSON text frames, RSA; v2: binary frames, Ed25519 +
X25519). No sockets, no asyncio, no clocks it was not given. The client and the
local Volt both sit on this package and share nothing else.
"""
from __future__ import annotations

from volt_data.protocol.envelope import InnerMessage, encode_end, encode_invoke, encode_payload, parse_inner
from volt_data.protocol.session import (
    ClientSession,
    Incoming,
    ServerSession,
    client_session_for,
)

__all__ = [
    "ClientSession",
    "Incoming",
    "InnerMessage",
    "ServerSession",
    "client_session_for",
    "encode_end",
    "encode_invoke",
    "encode_payload",
    "parse_inner",
]
