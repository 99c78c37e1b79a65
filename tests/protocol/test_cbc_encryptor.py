"""The reusable CBC encryptor is byte-for-byte the one-shot AES-CBC, message after message."""
from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from volt_data.protocol import crypto


@settings(max_examples=200, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    messages=st.lists(st.tuples(st.binary(min_size=16, max_size=16), st.binary(max_size=100)), max_size=8),
)
def test_each_message_equals_one_shot_cbc(key, messages):
    encryptor = crypto.CbcEncryptor(key)
    for iv, plaintext in messages:
        sealed = encryptor.encrypt(iv, plaintext)
        assert sealed == crypto.aes_cbc_encrypt(key, iv, plaintext)
        assert crypto.aes_cbc_decrypt(key, iv, sealed) == plaintext


def test_same_iv_every_time_as_v1_calls_do():
    key, iv = os.urandom(32), os.urandom(16)
    encryptor = crypto.CbcEncryptor(key)
    first = [encryptor.encrypt(iv, b"row %d" % i) for i in range(50)]
    assert first == [crypto.aes_cbc_encrypt(key, iv, b"row %d" % i) for i in range(50)]
