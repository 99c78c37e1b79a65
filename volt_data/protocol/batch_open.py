"""Open many sealed frames of one call at once, straight from their wire bytes.

A query result arrives as one sealed frame per row. Parsing each frame into an
:class:`~volt_data.protocol.session.Incoming` and slicing out its IV and
ciphertext costs more than decrypting it, so for the frames that have the usual
shape this module works on all of them together: numpy checks every frame's
fixed fields at once, IVs and ciphertexts (v1: one base64 decode) are joined with
one slice per frame, and :func:`~volt_data.protocol.batch_cipher.decrypt_buffer`
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

from volt_data.protocol import frames_v2
from volt_data.protocol.batch_cipher import (
    BLOCK,
    DecryptedBatch,
    as_iv_words,
    decrypt_buffer,
    decrypt_joined,
    words_at_every_offset,
)

#: Frames opened together at most: about 1 MiB of ciphertext, so every pass over
#: the batch (here and in the decoder) works in the CPU cache; larger batches are
#: slower per row, not faster.
BATCH_FRAMES = 4096
#: v2 sealed frame without metadata: preamble(10), metadata length(2) = 0, IV length(1) = 16, IV(16).
V2_HEAD = frames_v2.PREAMBLE_BYTES + 2 + 1 + BLOCK
_EQUALS, _LETTER_A = ord("="), ord("A")


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
    key: bytes, iv: bytes, call_id: int, frames: Sequence[bytes], fallback: Callable[[bytes], bytes]
) -> DecryptedBatch:
    """Decrypt v1 text frames (their UTF-8 bytes) of one call, all under ``key`` and ``iv``.

    The base64 of every frame is decoded in one call: the padding ``=`` of each
    frame becomes ``A`` so the frames' base64 can be joined, and the extra bytes
    that leaves after each ciphertext are dropped again. ``fallback(frame)``
    returns one frame's ciphertext by the general parser (used for the whole
    batch when the frames do not share the usual prefix and ending).
    """
    count = len(frames)
    if count == 0:
        return decrypt_joined(key, iv, [])
    if frames[0].__class__ is str:  # as websockets delivers text; the client routes bytes
        frames = [frame.encode() for frame in frames]
    prefix = v1_prefix(frames[0], call_id)
    if prefix is None:
        return decrypt_joined(key, iv, [fallback(frame) for frame in frames])
    skip = len(prefix)
    lengths = _lengths(frames)
    if (lengths < skip + 2).any() or not _same_shape(b"".join(frames), lengths, prefix):
        return decrypt_joined(key, iv, [fallback(frame) for frame in frames])
    body_lengths = lengths - skip - 2
    decoded = padding = None
    if not ((body_lengths <= 0).any() or (body_lengths % 4).any()):
        bodies = bytearray().join([frame[skip:-2] for frame in frames])
        padding = _unpad_in_place(bodies, np.cumsum(body_lengths))
        if padding is not None:
            try:
                # validate: any byte outside the alphabet, or an '=' that was not padding, fails.
                decoded = pybase64.b64decode(bodies, validate=True)
            except ValueError:
                pass
    if decoded is None:
        # Not plain base64 strings (a JSON escape such as \/ is legal there, or the frame
        # is broken): the general parser reads them, or says what is wrong.
        return decrypt_joined(key, iv, [fallback(frame) for frame in frames])
    sizes = body_lengths // 4 * 3
    ciphertext_lengths = sizes - padding
    padded = np.flatnonzero(padding)
    if len(padded) == 0:
        return decrypt_buffer(key, as_iv_words(iv, count), decoded, ciphertext_lengths)
    # Drop the bytes the padding turned into: each frame's last ``padding`` bytes.
    decoded_array = np.frombuffer(decoded, dtype=np.uint8)
    keep = np.ones(len(decoded_array), dtype=bool)
    decoded_ends = np.cumsum(sizes)
    keep[decoded_ends[padded] - 1] = False
    two = padded[padding[padded] == 2]
    keep[decoded_ends[two] - 2] = False
    return decrypt_buffer(key, as_iv_words(iv, count), decoded_array[keep], ciphertext_lengths)


def _same_shape(joined: bytes, lengths: np.ndarray, prefix: bytes) -> bool:
    """Whether every frame, back to back in ``joined``, starts with ``prefix`` (at least
    8 bytes) and ends with ``"}``: a few 8-byte comparisons per frame, no slicing."""
    words = words_at_every_offset(np.frombuffer(joined, dtype=np.uint8))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    for offset in [*range(0, len(prefix) - 8, 8), len(prefix) - 8]:
        if (words[starts + offset] != np.uint64(int.from_bytes(prefix[offset : offset + 8], "little"))).any():
            return False
    return bool(((words[ends - 8] >> np.uint64(48)) == np.uint64(int.from_bytes(b'"}', "little"))).all())


def _unpad_in_place(bodies: bytearray, body_ends: np.ndarray) -> np.ndarray | None:
    """Turn the padding ``=`` ending each frame's base64 into ``A``; how many each had (0-2).

    Only the last two characters of each frame are looked at: an ``=`` anywhere
    else is left for the strict decoder to refuse. None if a frame ends ``=x``.
    """
    view = np.frombuffer(bodies, dtype=np.uint8)
    last = body_ends - 1
    pad_last = view[last] == _EQUALS
    pad_second = view[last - 1] == _EQUALS
    if (pad_second & ~pad_last).any():
        return None
    view[last[pad_last]] = _LETTER_A
    view[last[pad_second] - 1] = _LETTER_A
    return pad_last.astype(np.int64) + pad_second
