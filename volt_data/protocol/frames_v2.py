"""v2 binary frame layouts (reference §4.3). Big-endian throughout.

Every frame starts ``version(1)=0x01, type(1), call id(8)``. Key-exchange frames
differ per direction; encrypted frames (types 2 and 3) share one layout.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import orjson

from volt_data.errors import ProtocolError
from volt_data.protocol.json_object import load_json_object

VERSION = 0x01
KEY_EXCHANGE = 1
INVOKE = 2
PAYLOAD = 3

_PREAMBLE = struct.Struct(">BBQ")
PREAMBLE_BYTES = _PREAMBLE.size  # 10


@dataclass(frozen=True)
class ClientKeyExchange:
    call_id: int
    metadata: dict
    signature: bytes
    claims: bytes


@dataclass(frozen=True)
class ServerKeyExchange:
    call_id: int
    public_key_der: bytes
    nonce: bytes
    signature: bytes


@dataclass(frozen=True)
class SealedFrame:
    """An encrypted frame (types 2/3), or an envelope error when ``iv`` is empty."""

    frame_type: int
    call_id: int
    metadata: dict
    iv: bytes
    ciphertext: bytes


def read_preamble(frame: bytes) -> tuple[int, int]:
    """(frame type, call id) of a frame, checking the protocol version."""
    if len(frame) < PREAMBLE_BYTES:
        raise ProtocolError(f"v2 frame of {len(frame)} bytes is shorter than its preamble")
    version, frame_type, call_id = _PREAMBLE.unpack_from(frame)
    if version != VERSION:
        raise ProtocolError(f"v2 frame has protocol version {version}, expected {VERSION}")
    return frame_type, call_id


class _Reader:
    """Bounds-checked cursor over a frame: a short frame is a ProtocolError."""

    def __init__(self, frame: bytes, offset: int) -> None:
        self.frame, self.offset = frame, offset

    def take(self, count: int, what: str) -> bytes:
        end = self.offset + count
        if end > len(self.frame):
            raise ProtocolError(f"v2 frame ends inside its {what}")
        chunk = self.frame[self.offset:end]
        self.offset = end
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "big")

    def rest(self) -> bytes:
        chunk = self.frame[self.offset:]
        self.offset = len(self.frame)
        return chunk


def decode_metadata(raw: bytes) -> dict:
    if not raw:
        return {}
    return load_json_object(raw, "v2 frame metadata")


def _encode_metadata(metadata: dict | None) -> bytes:
    raw = orjson.dumps(metadata) if metadata else b""
    if len(raw) > 0xFFFF:
        raise ProtocolError("v2 frame metadata longer than 65535 bytes")
    return len(raw).to_bytes(2, "big") + raw


def encode_client_key_exchange(call_id: int, metadata: dict | None, signature: bytes, claims: bytes) -> bytes:
    if len(claims) > 0xFFFF or len(signature) > 0xFF:
        raise ProtocolError("token too long for a key-exchange frame")
    return b"".join(
        [
            _PREAMBLE.pack(VERSION, KEY_EXCHANGE, call_id),
            _encode_metadata(metadata),
            bytes([len(signature)]),
            signature,
            len(claims).to_bytes(2, "big"),
            claims,
        ]
    )


def decode_client_key_exchange(frame: bytes) -> ClientKeyExchange:
    frame_type, call_id = read_preamble(frame)
    if frame_type != KEY_EXCHANGE:
        raise ProtocolError(f"expected a key-exchange frame, got type {frame_type}")
    reader = _Reader(frame, PREAMBLE_BYTES)
    metadata = decode_metadata(reader.take(reader.u16("metadata length"), "metadata"))
    signature = reader.take(reader.u8("signature length"), "signature")
    claims = reader.take(reader.u16("claims length"), "claims")
    return ClientKeyExchange(call_id, metadata, signature, claims)


def encode_server_key_exchange(call_id: int, public_key_der: bytes, nonce: bytes, signature: bytes) -> bytes:
    return b"".join(
        [
            _PREAMBLE.pack(VERSION, KEY_EXCHANGE, call_id),
            bytes([len(public_key_der)]),
            public_key_der,
            bytes([len(nonce)]),
            nonce,
            bytes([len(signature)]),
            signature,
        ]
    )


def decode_server_key_exchange(frame: bytes) -> ServerKeyExchange:
    frame_type, call_id = read_preamble(frame)
    if frame_type != KEY_EXCHANGE:
        raise ProtocolError(f"expected a key-exchange frame, got type {frame_type}")
    reader = _Reader(frame, PREAMBLE_BYTES)
    key = reader.take(reader.u8("key length"), "key")
    nonce = reader.take(reader.u8("nonce length"), "nonce")
    signature = reader.take(reader.u8("signature length"), "signature")
    return ServerKeyExchange(call_id, key, nonce, signature)


def encode_sealed(frame_type: int, call_id: int, metadata: dict | None, iv: bytes, ciphertext: bytes) -> bytes:
    return b"".join(
        [
            _PREAMBLE.pack(VERSION, frame_type, call_id),
            _encode_metadata(metadata),
            bytes([len(iv)]),
            iv,
            ciphertext,
        ]
    )


def decode_sealed(frame: bytes) -> SealedFrame:
    frame_type, call_id = read_preamble(frame)
    if frame_type == KEY_EXCHANGE:
        raise ProtocolError("expected an encrypted frame, got a key exchange")
    reader = _Reader(frame, PREAMBLE_BYTES)
    metadata = decode_metadata(reader.take(reader.u16("metadata length"), "metadata"))
    iv = reader.take(reader.u8("IV length"), "IV")
    return SealedFrame(frame_type, call_id, metadata, iv, reader.rest())
