"""decrypt_many must agree with a plain per-message AES-256-CBC decryption."""
from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from volt_data.errors import ProtocolError
from volt_data.protocol.batch_cipher import decrypt_cbc, decrypt_joined, decrypt_many, encrypt_cbc

KEY = bytes(range(32))


def reference_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def reference_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


# Lengths around block boundaries matter most: 0, 15, 16, 17, 32 ...
plaintexts = st.lists(
    st.one_of(st.binary(max_size=70), st.sampled_from([b"", b"x" * 15, b"y" * 16, b"z" * 17, b"w" * 32])),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), iv=st.binary(min_size=16, max_size=16), messages=plaintexts)
def test_shared_iv_matches_reference(key: bytes, iv: bytes, messages: list[bytes]) -> None:
    ciphertexts = [reference_encrypt(key, iv, m) for m in messages]
    assert decrypt_many(key, iv, ciphertexts) == messages


@settings(max_examples=200, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), data=st.data(), messages=plaintexts)
def test_per_message_ivs_match_reference(key: bytes, data: st.DataObject, messages: list[bytes]) -> None:
    ivs = [data.draw(st.binary(min_size=16, max_size=16)) for _ in messages]
    ciphertexts = [reference_encrypt(key, iv, m) for iv, m in zip(ivs, messages)]
    assert decrypt_many(key, ivs, ciphertexts) == messages
    assert [reference_decrypt(key, iv, c) for iv, c in zip(ivs, ciphertexts)] == messages


@given(
    key=st.binary(min_size=32, max_size=32),
    iv=st.binary(min_size=16, max_size=16),
    message=st.binary(max_size=100),
)
def test_single_message_helpers_round_trip(key: bytes, iv: bytes, message: bytes) -> None:
    ciphertext = encrypt_cbc(key, iv, message)
    assert ciphertext == reference_encrypt(key, iv, message)
    assert decrypt_cbc(key, iv, ciphertext) == message


def test_empty_batch() -> None:
    assert decrypt_many(KEY, [], []) == []
    assert decrypt_many(KEY, os.urandom(16), []) == []


def test_empty_plaintext_and_exact_block_multiple() -> None:
    iv = os.urandom(16)
    messages = [b"", b"a" * 16, b"b" * 48]
    ciphertexts = [encrypt_cbc(KEY, iv, m) for m in messages]
    assert [len(c) for c in ciphertexts] == [16, 32, 64]  # a whole padding block is added
    assert decrypt_many(KEY, iv, ciphertexts) == messages


@pytest.mark.parametrize("bad_last_byte", [0, 17, 255])
def test_out_of_range_padding_is_refused(bad_last_byte: int) -> None:
    iv = os.urandom(16)
    # Encrypt a full block without padding so the "padding" byte is whatever we choose.
    raw = b"q" * 15 + bytes([bad_last_byte])
    encryptor = Cipher(algorithms.AES(KEY), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(raw) + encryptor.finalize()
    good = encrypt_cbc(KEY, iv, b"fine")
    with pytest.raises(ProtocolError, match="bad padding"):
        decrypt_many(KEY, iv, [good, ciphertext])


def test_inconsistent_padding_bytes_are_refused() -> None:
    iv = os.urandom(16)
    raw = b"q" * 12 + bytes([4, 4, 3, 4])  # claims 4 bytes of padding, one is wrong
    encryptor = Cipher(algorithms.AES(KEY), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(raw) + encryptor.finalize()
    with pytest.raises(ProtocolError, match="bad padding"):
        decrypt_many(KEY, [iv], [ciphertext])


def test_tampered_iv_changes_padding() -> None:
    iv = os.urandom(16)
    ciphertext = encrypt_cbc(KEY, iv, b"abc")  # 13 bytes of padding value 13
    tampered_iv = iv[:-1] + bytes([iv[-1] ^ 0x20])  # flips the last plaintext byte to 13 ^ 0x20
    with pytest.raises(ProtocolError, match="bad padding"):
        decrypt_many(KEY, [tampered_iv], [ciphertext])


@pytest.mark.parametrize("length", [0, 1, 15, 17])
def test_ciphertext_not_whole_blocks_is_refused(length: int) -> None:
    with pytest.raises(ProtocolError, match="bad padding"):
        decrypt_many(KEY, os.urandom(16), [os.urandom(length)])


def test_wrong_iv_count_or_size() -> None:
    ciphertext = encrypt_cbc(KEY, bytes(16), b"x")
    with pytest.raises(ValueError):
        decrypt_many(KEY, [bytes(16), bytes(16)], [ciphertext])
    with pytest.raises(ProtocolError):
        decrypt_many(KEY, [bytes(8)], [ciphertext])
    with pytest.raises(ProtocolError):
        decrypt_many(KEY, bytes(8), [ciphertext])


@settings(max_examples=100, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), data=st.data(), messages=plaintexts)
def test_joined_buffer_holds_every_plaintext_at_its_offsets(
    key: bytes, data: st.DataObject, messages: list[bytes]
) -> None:
    ivs = [data.draw(st.binary(min_size=16, max_size=16)) for _ in messages]
    ciphertexts = [reference_encrypt(key, iv, m) for iv, m in zip(ivs, messages)]
    batch = decrypt_joined(key, ivs, ciphertexts)
    assert len(batch) == len(messages)
    assert batch.messages() == messages
    buffer = batch.buffer.tobytes()
    assert [buffer[a:b] for a, b in zip(batch.starts.tolist(), batch.stops.tolist())] == messages
    assert [batch.message(i) for i in range(len(messages))] == messages
