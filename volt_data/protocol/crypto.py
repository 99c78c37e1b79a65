"""Cryptographic building blocks shared by both protocol generations.

Thin, named wrappers over ``cryptography`` so the frame code reads like the
protocol reference: fingerprints, base58/base64url, AES-256-CBC, RSA-OAEP-SHA1,
the X25519 SPKI form and the HKDF that turns a shared secret into a call key.
"""
from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa, x25519
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from volt_data.errors import ProtocolError

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

#: HKDF parameters of the v2 key agreement (protocol reference §4.4). The salt is
#: the 16 ASCII characters, not their hex decoding.
V2_HKDF_SALT = b"a06e10d13fa4445a"
V2_HKDF_INFO = b"tdx-volt-encryption-key-derivation"

X25519_SPKI_PREFIX = bytes.fromhex("302a300506032b656e032100")
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")

AES_KEY_BYTES = 32
AES_BLOCK_BYTES = 16


def random_bytes(count: int) -> bytes:
    return os.urandom(count)


def base58_encode(data: bytes) -> str:
    """Bitcoin-alphabet base58, leading zero bytes kept as '1'."""
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(BASE58_ALPHABET[remainder])
    leading = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading + "".join(reversed(digits))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    if isinstance(text, str):
        text = text.encode("ascii")
    try:
        return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ProtocolError("bad base64url text") from exc


def b64_encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64_decode(text: str | bytes) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise ProtocolError("bad base64 text") from exc


def public_key_pem(public_key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey) -> str:
    """SubjectPublicKeyInfo PEM exactly as ``cryptography`` prints it (LF line ends)."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def fingerprint_v1(public_key_or_pem: rsa.RSAPublicKey | str) -> str:
    """v1 fingerprint: base58 of SHA-256 over the ASCII *PEM text* (not the DER)."""
    pem = public_key_or_pem if isinstance(public_key_or_pem, str) else public_key_pem(public_key_or_pem)
    return base58_encode(hashlib.sha256(pem.replace("\r\n", "\n").encode("ascii")).digest())


def fingerprint_v2(public_key: ed25519.Ed25519PublicKey) -> str:
    """v2 fingerprint: base58 of SHA-256 over the raw 32-byte Ed25519 key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base58_encode(hashlib.sha256(raw).digest())


def aes_cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


class CbcEncryptor:
    """AES-256-CBC/PKCS#7 encryption of many messages under one key, each with its own IV.

    With OpenSSL 3 creating a cipher context costs ~40 µs, several times the
    cost of encrypting a row frame, so a call keeps one running CBC context. To
    start a message at a new IV, the context is first fed one block that it
    encrypts to exactly that IV (``D_k(iv) XOR chain``); that block is dropped
    from the output. The result equals ``aes_cbc_encrypt(key, iv, plaintext)``
    and the IVs stay whatever the caller chose (random for v2).
    """

    __slots__ = ("_encrypt", "_decrypt_block", "_chain")

    def __init__(self, key: bytes) -> None:
        algorithm = algorithms.AES(key)
        self._chain = bytes(AES_BLOCK_BYTES)
        self._encrypt = Cipher(algorithm, modes.CBC(self._chain)).encryptor().update
        self._decrypt_block = Cipher(algorithm, modes.ECB()).decryptor().update

    def encrypt(self, iv: bytes, plaintext: bytes) -> bytes:
        if len(iv) != AES_BLOCK_BYTES:
            raise ProtocolError(f"bad IV length {len(iv)}")
        pad = AES_BLOCK_BYTES - len(plaintext) % AES_BLOCK_BYTES
        lead = int.from_bytes(self._decrypt_block(iv), "big") ^ int.from_bytes(self._chain, "big")
        out = self._encrypt(lead.to_bytes(AES_BLOCK_BYTES, "big") + plaintext + bytes((pad,)) * pad)
        self._chain = out[-AES_BLOCK_BYTES:]
        return out[AES_BLOCK_BYTES:]


def ecb_decryptor(key: bytes):
    """A reusable AES block decryption function (ECB keeps no state between calls)."""
    return Cipher(algorithms.AES(key), modes.ECB()).decryptor().update


def aes_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """Decrypt and unpad; any malformed input is a ProtocolError, never another exception."""
    if len(iv) != AES_BLOCK_BYTES:
        raise ProtocolError(f"bad IV length {len(iv)}")
    if not ciphertext or len(ciphertext) % AES_BLOCK_BYTES:
        raise ProtocolError(f"ciphertext length {len(ciphertext)} is not a positive multiple of 16")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= AES_BLOCK_BYTES or padded[-pad:] != bytes([pad]) * pad:
        raise ProtocolError("bad padding: wrong key or tampered ciphertext")
    return padded[:-pad]


_OAEP_SHA1 = asym_padding.OAEP(
    mgf=asym_padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None
)


def rsa_oaep_encrypt(public_key: rsa.RSAPublicKey, data: bytes) -> bytes:
    return public_key.encrypt(data, _OAEP_SHA1)


def rsa_oaep_decrypt(private_key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    try:
        return private_key.decrypt(data, _OAEP_SHA1)
    except ValueError as exc:
        raise ProtocolError("cannot unwrap the session key: not encrypted to this Volt's key") from exc


def rsa_sign(private_key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    return private_key.sign(data, asym_padding.PKCS1v15(), hashes.SHA256())


def rsa_verify(public_key: rsa.RSAPublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data, asym_padding.PKCS1v15(), hashes.SHA256())
        return True
    except InvalidSignature:
        return False


def ed25519_verify(public_key: ed25519.Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data)
        return True
    except InvalidSignature:
        return False


def x25519_public_der(public_key: x25519.X25519PublicKey) -> bytes:
    return X25519_SPKI_PREFIX + public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def x25519_from_der(der: bytes) -> x25519.X25519PublicKey:
    if len(der) != 44 or not der.startswith(X25519_SPKI_PREFIX):
        raise ProtocolError("key exchange key is not an X25519 SubjectPublicKeyInfo")
    return x25519.X25519PublicKey.from_public_bytes(der[len(X25519_SPKI_PREFIX):])


def derive_v2_key(shared_secret: bytes) -> bytes:
    """The v2 call key: HKDF-SHA256 over the X25519 shared secret (reference §4.4)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=AES_KEY_BYTES, salt=V2_HKDF_SALT, info=V2_HKDF_INFO
    ).derive(shared_secret)
