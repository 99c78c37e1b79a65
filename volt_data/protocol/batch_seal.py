"""AES-256-CBC encryption of many messages at once: the server's row hot path.

A query result leaves the Volt as one sealed frame per row, each message with
its own CBC chain (v2: its own random IV; v1: the call's IV). Encrypting them
one by one spends most of the time crossing into the cipher once per row.

CBC encryption chains *within* a message (ciphertext block ``k`` is
``E(p[k] XOR c[k-1])``, the IV standing in for ``c[-1]``), but messages are
independent of each other. So the messages are encrypted side by side, block
position by block position: for position ``k``, the ``k``-th plaintext block of
every message that has one is XORed with that message's previous ciphertext
block (or its IV) and the lot goes through a single AES-ECB call. The result is
byte for byte what a per-message ``AES-CBC(key, iv, PKCS7(plaintext))`` gives.

Also here: :func:`payload_bodies`, the escaped bodies of many ``method_payload``
inner messages made in one pass. Pure functions, no I/O.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from volt_data.errors import ProtocolError

BLOCK = 16

#: PKCS#7 padding for a message whose length is ``r`` modulo 16.
_PADDING = [bytes((BLOCK - r,)) * (BLOCK - r) for r in range(BLOCK)]

_BLOCK_ITEM = np.dtype((np.void, BLOCK))
_WORDS = np.dtype(np.uint64)

#: ``encode_payload(text)`` is ``PAYLOAD_PREFIX + <text as an escaped JSON string body> + PAYLOAD_SUFFIX``.
PAYLOAD_PREFIX = b'{"method_payload":{"json_payload":"'
PAYLOAD_SUFFIX = b'"}}'


def payload_bodies(texts: Sequence[str]) -> list[bytes]:
    """Each text as the escaped body of a JSON string: the part of
    ``encode_payload(text)`` between :data:`PAYLOAD_PREFIX` and :data:`PAYLOAD_SUFFIX`.

    ``orjson`` escapes the whole list at once; the escaped strings are then cut
    apart at the ``","`` between them. That cut is unambiguous unless an
    escaped quote is followed by a comma (``\\",``, from a text containing
    ``",``): only then could a ``","`` lie inside a string, so only then is each
    text escaped on its own instead.
    """
    if not texts:
        return []
    joined = orjson.dumps(list(texts))[2:-2]
    if b'\\",' in joined:
        return [orjson.dumps(text)[1:-1] for text in texts]
    return joined.split(b'","')


def payload_inners(texts: Sequence[str]) -> list[bytes]:
    """``[encode_payload(t) for t in texts]``, escaped in one pass (see :func:`payload_bodies`)."""
    head, tail = PAYLOAD_PREFIX, PAYLOAD_SUFFIX
    return [head + body + tail for body in payload_bodies(texts)]


class BatchSealer:
    """Encrypts batches of messages under one AES-256 key (one call's key).

    Keeps one ECB context for the key: with OpenSSL 3 creating a context costs
    more than encrypting a whole batch of small rows.
    """

    __slots__ = ("_encryptor", "_ecb")

    def __init__(self, key: bytes) -> None:
        self._encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        self._ecb = self._encryptor.update

    def encrypt_joined(self, ivs: bytes, plaintexts: Sequence[bytes], *, prefix: bytes = b"",
                       suffix: bytes = b"", with_ivs: bool = False) -> tuple[bytes, list[int]]:
        """Encrypt (AES-256-CBC, PKCS#7) every message; the ciphertexts end to end.

        Message ``i`` is ``prefix + plaintexts[i] + suffix`` (a fixed envelope
        around each body costs no copy of its own). ``ivs`` is one 16-byte IV
        shared by every message (v1) or the IVs of all messages joined (v2:
        ``16 * len(plaintexts)`` bytes). Returns the joined ciphertexts and the
        offsets where each one starts, plus the total length at the end
        (message ``i`` is ``joined[offsets[i]:offsets[i + 1]]``). With
        ``with_ivs`` (per-message IVs only) each message's IV comes first in its
        part, ``IV + ciphertext`` as a v2 frame carries them.
        """
        count = len(plaintexts)
        if count == 0:
            return b"", [0]
        if len(ivs) == BLOCK:
            chain = np.frombuffer(ivs, dtype=_WORDS).reshape(1, 2)  # one IV for all: broadcasts
        elif len(ivs) == BLOCK * count:
            chain = np.frombuffer(ivs, dtype=_WORDS).reshape(count, 2)
        else:
            raise ProtocolError(f"{len(ivs)} bytes of IVs for {count} messages")
        if with_ivs and len(chain) != count:
            raise ValueError("with_ivs needs one IV per message")
        # Joined padded messages, built without a Python step per message:
        # [prefix, body, suffix + padding] for each, one join.
        lengths = list(map(len, plaintexts))
        extra = len(prefix) + len(suffix)
        endings = [suffix + _PADDING[(r + extra) & 15] for r in range(BLOCK)]
        parts: list[bytes] = [prefix] * (3 * count)
        parts[1::3] = plaintexts
        parts[2::3] = map(endings.__getitem__, map((BLOCK - 1).__and__, lengths))
        padded = b"".join(parts)
        # Blocks as 16-byte items: gathering and scattering them by index is one
        # numpy call each; XOR happens on a uint64 view of the gathered copy.
        plain = np.frombuffer(padded, dtype=_BLOCK_ITEM)

        # Per message: how many blocks, and where its first block is.
        blocks = np.array(lengths, dtype=np.int64)
        blocks += extra
        blocks >>= 4
        blocks += 1
        ends = np.cumsum(blocks)
        firsts = ends - blocks
        # Where each message's blocks go in the output (one block later per
        # message before it, and one more, when its IV leads).
        if with_ivs:
            ends += np.arange(1, count + 1)
            out_firsts = ends - blocks
        else:
            out_firsts = firsts

        # Longest messages first: the messages that have a block at position k
        # are then always a prefix of this order, and so are their chains.
        order = np.argsort(-blocks, kind="stable")
        sorted_firsts, sorted_out_firsts = firsts[order], out_firsts[order]
        if len(chain) > 1:
            chain = chain[order]
        # live[k]: how many messages have more than k blocks.
        live_counts = count - np.cumsum(np.bincount(blocks))[:-1]

        cipher = np.empty(int(ends[-1]), dtype=_BLOCK_ITEM)
        if with_ivs:
            cipher[out_firsts - 1] = np.frombuffer(ivs, dtype=_BLOCK_ITEM)
        ecb = self._ecb
        for position, live in enumerate(live_counts.tolist()):
            words = plain.take(sorted_firsts[:live] + position).view(_WORDS).reshape(live, 2)
            words ^= chain[:live]
            encrypted = ecb(words.tobytes())
            cipher[sorted_out_firsts[:live] + position] = np.frombuffer(encrypted, dtype=_BLOCK_ITEM)
            chain = np.frombuffer(encrypted, dtype=_WORDS).reshape(live, 2)
        offsets = (np.concatenate(([0], ends)) * BLOCK).tolist()
        return cipher.tobytes(), offsets

    def encrypt_many(self, ivs: bytes, plaintexts: Sequence[bytes], *,
                     prefix: bytes = b"", suffix: bytes = b"") -> list[bytes]:
        """Like :meth:`encrypt_joined`, one ciphertext per message."""
        joined, offsets = self.encrypt_joined(ivs, plaintexts, prefix=prefix, suffix=suffix)
        return split_joined(joined, offsets)


def split_joined(joined: bytes, offsets: list[int]) -> list[bytes]:
    """``joined[offsets[i]:offsets[i + 1]]`` for every i, sliced without a Python loop."""
    return list(map(joined.__getitem__, map(slice, offsets, offsets[1:])))
