"""AES-256-CBC decryption of many messages in one cipher call.

A query result arrives as one encrypted frame per row (protocol reference §3.3 for
v1, §4.3/§4.4 for v2), so decrypting frame by frame spends most of its time
creating cipher objects and crossing into C once per row. CBC decryption does
not chain through the cipher: plaintext block ``i`` is ``D(c[i]) XOR c[i-1]``
(with the IV standing in for ``c[-1]``). So the messages can be laid end to end
and decrypted as one CBC message; only the first block of each later message
then needs its own IV XORed in instead of its predecessor's last block, which is
one numpy operation.

v1 uses one key and IV for every message of a call; v2 uses one key per call and
a fresh IV per frame. :func:`decrypt_many` accepts either form; :func:`decrypt_joined`
leaves the plaintexts in one buffer for bulk decoders. Pure functions, no I/O.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from volt_data.errors import ProtocolError

BLOCK = 16


def _padding_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per pad length n: which bytes of the last block are padding (mask) and their value."""
    masks = np.zeros((BLOCK + 1, 2), dtype=np.uint64)
    values = np.zeros((BLOCK + 1, 2), dtype=np.uint64)
    for n in range(1, BLOCK + 1):
        mask = bytes(BLOCK - n) + b"\xff" * n
        masks[n] = np.frombuffer(mask, dtype=np.uint64)
        values[n] = np.frombuffer(bytes(BLOCK - n) + bytes([n]) * n, dtype=np.uint64)
    return masks, values


_PAD_MASKS, _PAD_VALUES = _padding_tables()


@dataclass(frozen=True)
class DecryptedBatch:
    """Plaintexts of many messages in one buffer, as :func:`decrypt_joined` leaves them.

    Message ``i`` is ``buffer[starts[i]:stops[i]]``; between messages lie their
    padding bytes. Bulk decoders scan ``buffer`` directly, so no bytes object is
    made per message; :meth:`messages` makes them for everyone else.
    """

    buffer: np.ndarray  # uint8, read-only use
    starts: np.ndarray  # int64
    stops: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.starts)

    def messages(self) -> list[bytes]:
        """Each plaintext as its own bytes object, in order."""
        plain = self.buffer.tobytes()
        return [plain[start:stop] for start, stop in zip(self.starts.tolist(), self.stops.tolist())]

    def message(self, index: int) -> bytes:
        """One plaintext as bytes."""
        return self.buffer[self.starts[index] : self.stops[index]].tobytes()

    def subset(self, first: int, last: int) -> "DecryptedBatch":
        """Messages ``first:last``, on the same buffer."""
        return DecryptedBatch(self.buffer, self.starts[first:last], self.stops[first:last])

    def starts_with(self, prefix: bytes) -> np.ndarray:
        """Boolean per message: does its plaintext begin with ``prefix``?"""
        size = len(prefix)
        result = self.stops - self.starts >= size
        if size and result.any():
            starts = self.starts[result]
            heads = self.buffer[starts[:, None] + np.arange(size)]
            result[result] = (heads == np.frombuffer(prefix, dtype=np.uint8)).all(axis=1)
        return result


def words_at_every_offset(data: np.ndarray) -> np.ndarray:
    """The little-endian 8-byte word starting at every byte offset of ``data`` (uint8):
    a strided view, no copy, so one gather compares 8 bytes at many places at once."""
    return np.ndarray((max(len(data) - 7, 0),), dtype="<u8", buffer=data, strides=(1,))


def decrypt_many(key: bytes, ivs: Sequence[bytes] | bytes, ciphertexts: Sequence[bytes]) -> list[bytes]:
    """Decrypt AES-256-CBC + PKCS#7 messages, all under ``key``, in one ECB pass.

    ``ivs`` is either one 16-byte IV shared by every message (v1) or one IV per
    message (v2). Returns the plaintexts in order. Raises
    :class:`~volt_data.errors.ProtocolError` ("bad padding") if a ciphertext is
    empty or not a whole number of blocks, or if its padding does not check.
    """
    if len(ciphertexts) == 0:
        return []
    return decrypt_joined(key, ivs, ciphertexts).messages()


def decrypt_joined(key: bytes, ivs: Sequence[bytes] | bytes, ciphertexts: Sequence[bytes]) -> DecryptedBatch:
    """Like :func:`decrypt_many`, but the plaintexts stay in one buffer (see :class:`DecryptedBatch`)."""
    count = len(ciphertexts)
    if count == 0:
        return DecryptedBatch(np.empty(0, np.uint8), np.empty(0, np.int64), np.empty(0, np.int64))
    lengths = np.fromiter(map(len, ciphertexts), dtype=np.int64, count=count)
    return decrypt_buffer(key, as_iv_words(ivs, count), b"".join(ciphertexts), lengths)


def decrypt_buffer(key: bytes, iv_words: np.ndarray, ciphertext, lengths: np.ndarray) -> DecryptedBatch:
    """Decrypt messages that lie back to back in ``ciphertext`` (any bytes-like object).

    ``lengths`` gives each message's size; ``iv_words`` is :func:`as_iv_words` of the
    IVs, one row shared by all (v1) or one row per message (v2). One CBC pass runs
    over the whole buffer as if it were a single message, which is already right
    for every block but the first of each later message: that one was XORed with
    the previous message's last ciphertext block instead of its own IV, which a
    vectorised fix-up swaps. Raises ProtocolError ("bad padding") as
    :func:`decrypt_many` does.
    """
    count = len(lengths)
    if count == 0:
        return DecryptedBatch(np.empty(0, np.uint8), np.empty(0, np.int64), np.empty(0, np.int64))
    if (lengths <= 0).any() or (lengths % BLOCK).any():
        raise ProtocolError("bad padding")
    # np.empty: no zero-filling of a buffer the cipher overwrites anyway;
    # update_into wants block_size - 1 spare bytes.
    decrypted = np.empty(int(lengths.sum()) + BLOCK - 1, dtype=np.uint8)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv_words[0].tobytes())).decryptor()
    written = decryptor.update_into(ciphertext, decrypted)
    decryptor.finalize()
    plain = decrypted[:written]

    ends = np.cumsum(lengths)
    starts = ends - lengths
    if count > 1:
        cipher_words = np.frombuffer(ciphertext, dtype=np.uint64, count=written // 8).reshape(-1, 2)
        plain_words = plain.view(np.uint64).reshape(-1, 2)
        first_blocks = starts[1:] // BLOCK
        later_ivs = iv_words[1:] if len(iv_words) > 1 else iv_words
        plain_words[first_blocks] ^= cipher_words[first_blocks - 1] ^ later_ivs

    # PKCS#7: the last byte n (1..16) says how many trailing bytes equal n. Checked as
    # two 8-byte words per message against a table of the 16 valid endings.
    last_words = plain.view(np.uint64).reshape(-1, 2)[ends // BLOCK - 1]
    pad = (last_words[:, 1] >> np.uint64(56)).astype(np.int64)
    if ((pad < 1) | (pad > BLOCK)).any():
        raise ProtocolError("bad padding")
    if ((last_words & _PAD_MASKS[pad]) != _PAD_VALUES[pad]).any():
        raise ProtocolError("bad padding")
    return DecryptedBatch(plain, starts, ends - pad)


def as_iv_words(ivs: Sequence[bytes] | bytes, count: int) -> np.ndarray:
    """The IVs as (n, 2) uint64 words: one row if shared (v1), one per message (v2)."""
    if isinstance(ivs, (bytes, bytearray, memoryview)):
        if len(ivs) != BLOCK:
            raise ProtocolError(f"IV must be {BLOCK} bytes, got {len(ivs)}")
        return np.frombuffer(bytes(ivs), dtype=np.uint64).reshape(1, 2)
    if len(ivs) != count:
        raise ValueError(f"{len(ivs)} IVs for {count} ciphertexts")
    joined_ivs = b"".join(ivs)
    if len(joined_ivs) != BLOCK * count:
        raise ProtocolError(f"every IV must be {BLOCK} bytes")
    return np.frombuffer(joined_ivs, dtype=np.uint64).reshape(count, 2)


def encrypt_cbc(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """Encrypt one message with AES-256-CBC and PKCS#7 padding (tests, benchmarks)."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def decrypt_cbc(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """Decrypt one AES-256-CBC + PKCS#7 message; the single-message reference for tests."""
    return decrypt_many(key, iv, [ciphertext])[0]
