"""Known-answer vectors for the building blocks."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from volt_data.protocol import crypto, tokens

SEED_README = Path(__file__).resolve().parents[2].parent / "shared" / "seed" / "volt_client_web-0.1.14-README.txt"

#: The seed config's Volt key and the fingerprint it states (protocol reference §3.1).
SEED_VOLT_KEY = (
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAshZ/IqKr1y0TeMgT4l4f\n"
    "c/LrCCjg+lIXD4FE9Na3kL0kRTSwda6FsGM4EmuU0NVK+UZ6ViFEhrgA4DCbMf8h\n"
    "efuFcWWfHq17zzkdI65vI1Lh9qdKzYNK0FZ3pKoVQyXtpdomZ8rChosFpdDRm1gS\n"
    "mV4sTPvKzsFHSTxcOlHRZ/CMtuS09cPvWuuJ4Lm3VmIr70wYSVfC/78SxJYHGYDj\n"
    "wkaBqqBwNxIamxO4dwJ8azpdNLnBEeSnhzt2OP2dLu82l1IdjzJlbEWWlL3R1pdG\n"
    "55lf/Y9CySAMQyupbiKX1sOPZ1MWWsweAZNMChQtt8hup67vJV4/MOuLeLEF8em9\n"
    "cwIDAQAB\n-----END PUBLIC KEY-----\n"
)
SEED_FINGERPRINT = "5M1aCpnijWbmibq748AHnyG1qgpHMFmLi5UUeaGBGo8t"


def test_seed_fingerprint_is_over_the_pem_text():
    assert crypto.fingerprint_v1(SEED_VOLT_KEY) == SEED_FINGERPRINT
    key = serialization.load_pem_public_key(SEED_VOLT_KEY.encode())
    assert crypto.fingerprint_v1(key) == SEED_FINGERPRINT  # re-rendered PEM is byte-identical
    assert crypto.fingerprint_v1(SEED_VOLT_KEY.replace("\n", "\r\n")) == SEED_FINGERPRINT
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert crypto.base58_encode(hashlib.sha256(der).digest()) != SEED_FINGERPRINT


def test_seed_readme_states_the_same_key():
    if not SEED_README.exists():
        pytest.skip("../shared/seed is not beside this checkout")
    text = SEED_README.read_text()
    assert json.dumps(SEED_VOLT_KEY)[1:-1] in text and SEED_FINGERPRINT in text


@pytest.mark.parametrize(
    "data, text",
    [(b"", ""), (b"\0", "1"), (b"\0\0\x01", "112"), (b"hello world", "StV1DL6CwTryKyV"), (bytes([255] * 4), "7YXq9G")],
)
def test_base58_vectors(data, text):
    assert crypto.base58_encode(data) == text


def test_v2_fixed_header():
    assert tokens.V2_HEADER_B64 == "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9"


def test_hkdf_uses_the_ascii_salt():
    # RFC 5869 HKDF computed independently with hmac, salt/info as ASCII bytes.
    import hmac

    secret = bytes(range(32))
    prk = hmac.new(b"a06e10d13fa4445a", secret, hashlib.sha256).digest()
    okm = hmac.new(prk, b"tdx-volt-encryption-key-derivation" + b"\x01", hashlib.sha256).digest()
    assert crypto.derive_v2_key(secret) == okm


def test_aes_round_trip_and_bad_padding():
    key, iv = bytes(32), bytes(16)
    for size in (0, 1, 15, 16, 17, 1000):
        data = bytes(range(256)) * 4
        assert crypto.aes_cbc_decrypt(key, iv, crypto.aes_cbc_encrypt(key, iv, data[:size])) == data[:size]
    with pytest.raises(Exception, match="padding"):
        crypto.aes_cbc_decrypt(bytes([1]) * 32, iv, crypto.aes_cbc_encrypt(key, iv, b"x"))


def test_x25519_spki_prefix_is_checked():
    with pytest.raises(Exception, match="X25519"):
        crypto.x25519_from_der(bytes(44))


def test_fingerprint_shape():
    assert re.fullmatch(r"[1-9A-HJ-NP-Za-km-z]+", SEED_FINGERPRINT)


def test_seen_tokens_refuse_a_second_use_until_expiry():
    from volt_data.errors import AuthenticationError

    seen = tokens.SeenTokens()
    seen.claim(b"sig-1", expires=100.0, now=10.0)
    with pytest.raises(AuthenticationError, match="already used"):
        seen.claim(b"sig-1", expires=100.0, now=50.0)
    seen.claim(b"sig-2", expires=200.0, now=150.0)  # sig-1 has expired and is forgotten
    assert len(seen) == 1
