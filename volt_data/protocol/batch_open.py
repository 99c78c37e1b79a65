"""Open many sealed frames of one call at once, straight from their wire bytes.

A query result arrives as one sealed frame per row. Parsing each frame into an
:class:`~volt_data.protocol.session.Incoming` and slicing out its IV and
ciphertext costs more than decrypting it, so for the frames that have the usual
shape this module works on all of them together: the frames are joined into one
buffer, numpy checks every frame's fixed fields at once and gathers IVs and
ciphertexts, and :func:`~volt_data.protocol.batch_cipher.decrypt_buffer`
decrypts everything in one pass. A batch that does not have the usual shape
(v2 metadata, another IV size; v1 extra keys or other spacing) goes through the
general per-frame parser instead, so nothing depends on exact bytes. Pure
functions, no I/O.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import orjson
import pybase64

from volt_data.errors import ProtocolError
from volt_data.protocol import frames_v2
from volt_data.protocol.batch_cipher import BLOCK, DecryptedBatch, as_iv_words, decrypt_buffer, decrypt_joined

#: Frames opened together at most: about 1 MiB of ciphertext, so every pass over
#: the batch (here and in the decoder) works in the CPU cache; larger batches are
#: slower per row, not faster.
BATCH_FRAMES = 4096
#: v2 sealed frame without metadata: preamble(10), metadata length(2) = 0, IV length(1) = 16, IV(16).
V2_HEAD = frames_v2.PREAMBLE_BYTES + 2 + 1 + BLOCK
_EQUALS, _LETTER_A = ord("="), b"A"


def _lengths(frames: Sequence[bytes]) -> np.ndarray:
    return np.array(list(map(len, frames)), dtype=np.int64)


def open_v2_frames(key: bytes, frames: Sequence[bytes], fallback: Callable[[bytes], tuple[bytes, bytes]]) -> DecryptedBatch:
    """Decrypt v2 sealed frames of one call (all under ``key``).

    ``fallback(frame)`` returns ``(iv, ciphertext)`` for one frame by the general
    parser; it is used for the whole batch when any frame carries metadata or an
    IV that is not 16 bytes, and raises ProtocolError on malformed frames.
    """
    count = len(frames)
    if count == 0:
        return decrypt_joined(key, [], [])
    lengths = _lengths(frames) - V2_HEAD
    first = frames[0]
    # One slice per frame for its head, one for its ciphertext: cheaper than
    # numpy gathering them out of the joined frames.
    heads = np.frombuffer(b"".join([frame[:V2_HEAD] for frame in frames]), dtype=np.uint8)
    usual = (
        len(heads) == count * V2_HEAD
        and (lengths > 0).all()
        and first[0] == frames_v2.VERSION
        and first[1] == frames_v2.PAYLOAD
        and first[10:13] == bytes([0, 0, BLOCK])  # no metadata, 16-byte IV
    )
    heads = heads.reshape(-1, V2_HEAD) if usual else heads
    if not usual or (heads[:, :13] != heads[0, :13]).any():
        ivs, ciphertexts = zip(*map(fallback, frames))
        return decrypt_joined(key, ivs, ciphertexts)
    ivs = np.ascontiguousarray(heads[:, V2_HEAD - BLOCK :]).view(np.uint64)
    ciphertext = b"".join([frame[V2_HEAD:] for frame in frames])
    return decrypt_buffer(key, ivs, ciphertext, lengths)


def v1_prefix(frame: bytes, call_id: int) -> bytes | None:
    """The bytes before the base64 of a ``{"invoke_id": N, "json_payload": "…"}`` frame.

    None unless the frame has exactly those two keys in that order (any JSON
    spacing) and ``N`` is ``call_id``: then every frame of the call that starts
    with these bytes and ends with ``"}`` differs from it only in its base64.
    """
    marker = frame.find(b'"json_payload"')
    if marker < 0:
        return None
    quote = frame.find(b'"', marker + len(b'"json_payload"'))
    if quote < 0 or not frame.endswith(b'"}'):
        return None
    prefix = frame[: quote + 1]
    try:
        shape = orjson.loads(prefix + b'"}')
    except orjson.JSONDecodeError:
        return None
    if shape != {"invoke_id": call_id, "json_payload": ""} or list(shape) != ["invoke_id", "json_payload"]:
        return None
    return prefix


def open_v1_frames(
    key: bytes, iv: bytes, call_id: int, frames: Sequence[str | bytes], fallback: Callable[[str | bytes], bytes]
) -> DecryptedBatch:
    """Decrypt v1 text frames (str as websockets delivers them, or UTF-8 bytes) of one call,
    all under ``key`` and ``iv``.

    The base64 of every frame is decoded in one call: the padding ``=`` of each
    frame becomes ``A`` so the frames' base64 can be joined, and the extra zero
    bytes that leaves after each ciphertext are dropped again. ``fallback(frame)``
    returns one frame's ciphertext by the general parser (used for the whole
    batch when the frames do not share the usual prefix).
    """
    count = len(frames)
    if count == 0:
        return decrypt_joined(key, iv, [])
    first = frames[0]
    text = first.__class__ is str
    # Offsets below count characters of str frames as bytes: true for ASCII, which
    # the joins check (a frame of this shape is ASCII: the prefix, then base64).
    join = _join_ascii if text else b"".join
    try:
        prefix = v1_prefix(first.encode() if text else first, call_id)
        if prefix is None:
            return decrypt_joined(key, iv, [fallback(frame) for frame in frames])
        skip = len(prefix)
        lengths = _lengths(frames)
        body_lengths = lengths - skip - 2
        if (body_lengths <= 0).any() or not _same_shape(join(frames), lengths, prefix):
            return decrypt_joined(key, iv, [fallback(frame) for frame in frames])
        bodies = np.frombuffer(join([frame[skip:-2] for frame in frames]), dtype=np.uint8)
    except UnicodeEncodeError:
        return decrypt_joined(key, iv, [fallback(frame) for frame in frames])
    if (body_lengths % 4).any():
        raise ProtocolError("v1 json_payload is not base64 (length not a multiple of 4)")
    body_ends = np.cumsum(body_lengths)
    padding = _padding_per_frame(bodies, body_ends)
    base64 = bodies.tobytes()
    if padding.any():
        base64 = base64.replace(b"=", _LETTER_A)
    try:
        decoded = pybase64.b64decode(base64, validate=True)
    except ValueError as exc:
        raise ProtocolError(f"v1 json_payload is not base64: {exc}") from None
    sizes = body_lengths // 4 * 3
    ciphertext_lengths = sizes - padding
    if not padding.any():
        return decrypt_buffer(key, as_iv_words(iv, count), decoded, ciphertext_lengths)
    # Drop the bytes the padding turned into: each frame's last ``padding`` bytes.
    decoded_array = np.frombuffer(decoded, dtype=np.uint8)
    keep_decoded = np.ones(len(decoded_array), dtype=bool)
    decoded_ends = np.cumsum(sizes)
    padded = np.flatnonzero(padding)
    keep_decoded[decoded_ends[padded] - 1] = False
    two = padded[padding[padded] == 2]
    keep_decoded[decoded_ends[two] - 2] = False
    return decrypt_buffer(key, as_iv_words(iv, count), decoded_array[keep_decoded], ciphertext_lengths)


def _join_ascii(parts: Sequence[str]) -> bytes:
    return "".join(parts).encode("ascii")


def _same_shape(joined: bytes, lengths: np.ndarray, prefix: bytes) -> bool:
    """Whether every frame (back to back in ``joined``) starts with ``prefix`` and ends
    with ``"}``, checked 8 bytes at a time."""
    wire = np.frombuffer(joined + bytes(8), dtype=np.uint8)
    words = np.ndarray((len(wire) - 7,), dtype="<u8", buffer=wire, strides=(1,))  # the word at every offset
    ends = np.cumsum(lengths)
    starts = ends - lengths
    padded = prefix + bytes(-len(prefix) % 8)
    for offset in range(0, len(prefix), 8):
        expected = int.from_bytes(padded[offset : offset + 8], "little")
        mask = (1 << 8 * min(8, len(prefix) - offset)) - 1
        if ((words[starts + offset] & np.uint64(mask)) != np.uint64(expected)).any():
            return False
    return bool(((words[ends - 2] & np.uint64(0xFFFF)) == np.uint64(int.from_bytes(b'"}', "little"))).all())


def _padding_per_frame(bodies: np.ndarray, body_ends: np.ndarray) -> np.ndarray:
    """How many ``=`` end each frame's base64 (0-2); ProtocolError if any stands elsewhere."""
    padding = np.zeros(len(body_ends), dtype=np.int64)
    equals = np.flatnonzero(bodies == _EQUALS)
    if len(equals) == 0:
        return padding
    frame = np.searchsorted(body_ends, equals, side="right")
    from_end = body_ends[frame] - equals  # 1 for the last character, 2 for the one before
    np.add.at(padding, frame, 1)
    if (from_end > 2).any() or (from_end > padding[frame]).any():
        raise ProtocolError("v1 json_payload has '=' inside its base64")
    return padding
