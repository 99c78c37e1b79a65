"""Per-connection protocol state for both sides and both generations.

A *session* knows the keys and the per-call ciphers of one websocket
connection. It turns intentions (open a call, send a payload, half-close) into
frames, and frames into :class:`Incoming` values routed by call id. It never
touches a socket: the caller writes the frames it returns and feeds it the
frames it reads (the h11 pattern).

Client side: :class:`ClientV1Session`, :class:`ClientV2Session` (pick one with
:func:`client_session_for`). Server side: :class:`ServerSession` handles both
generations on one connection, telling them apart by frame kind (text = v1,
binary = v2), as a Volt endpoint does.
"""
from __future__ import annotations

import binascii
import functools
import os
import struct
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Union

import orjson
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa, x25519

from volt_data.errors import AuthenticationError, ProtocolError
from volt_data.protocol import batch_open, batch_seal, crypto, frames_v2, tokens
from volt_data.protocol.batch_cipher import DecryptedBatch, decrypt_many
from volt_data.protocol.json_object import load_json_object

Frame = Union[str, bytes]

# Kinds of Incoming
SEALED = "sealed"  # an encrypted inner message for an open call
KEY_EXCHANGE = "key_exchange"  # v2 key-exchange frame (either direction)
ENVELOPE_ERROR = "envelope_error"  # the frame itself reports a failure (no ciphertext)


@dataclass(slots=True)
class Incoming:
    """One received frame, decoded as far as is possible without call keys."""

    kind: str
    call_id: Optional[int]
    ciphertext: bytes = b""
    iv: bytes = b""  # v2: per frame; v1: empty (the call's IV applies)
    metadata: dict = field(default_factory=dict)
    client_end: bool = False
    error: Optional[str] = None
    token: Optional[str] = None  # v1 first frame from a client
    target_fingerprint: list = field(default_factory=list)
    key_exchange: object = None  # frames_v2.ClientKeyExchange / ServerKeyExchange


@dataclass
class _CallCipher:
    key: bytes
    iv: Optional[bytes] = None  # v1: one IV for the whole call, both directions
    _encryptor: Optional[crypto.CbcEncryptor] = None
    _block_decrypt: Optional[Callable[[bytes], bytes]] = None

    def encrypt(self, iv: bytes, plaintext: bytes) -> bytes:
        """AES-CBC under the call key, reusing one cipher context for the whole call."""
        if self._encryptor is None:
            self._encryptor = crypto.CbcEncryptor(self.key)
        return self._encryptor.encrypt(iv, plaintext)

    def decrypt(self, iv: bytes, ciphertext: bytes) -> bytes:
        """One message, on a cipher context kept for the whole call.

        A fresh OpenSSL context costs far more than decrypting a small frame,
        and the batch path's set-up (numpy views) does too, so single frames
        (unary answers, wire chunks) come here: an ECB pass, then the CBC XOR
        with the previous ciphertext block done on Python integers.
        """
        if len(iv) != crypto.AES_BLOCK_BYTES or not ciphertext or len(ciphertext) % crypto.AES_BLOCK_BYTES:
            raise ProtocolError("bad padding")
        if self._block_decrypt is None:
            self._block_decrypt = crypto.ecb_decryptor(self.key)
        blocks = self._block_decrypt(ciphertext)
        chain = iv + ciphertext[: -crypto.AES_BLOCK_BYTES]
        plain = (int.from_bytes(blocks, "big") ^ int.from_bytes(chain, "big")).to_bytes(len(blocks), "big")
        pad = plain[-1]
        if not 1 <= pad <= crypto.AES_BLOCK_BYTES or plain[-pad:] != bytes((pad,)) * pad:
            raise ProtocolError("bad padding")
        return plain[:-pad]


def _now() -> float:
    return time.time()


def _seal_v1(cipher: _CallCipher, plaintext: bytes) -> str:
    return crypto.b64_encode(cipher.encrypt(cipher.iv, plaintext))


#: Below this many frames, per-frame decryption on the call's context beats the batch set-up.
_BATCH_MIN_FRAMES = 8


def _open_many(cipher: _CallCipher, frames: list[Incoming]) -> list[bytes]:
    if len(frames) < _BATCH_MIN_FRAMES:
        shared = cipher.iv
        return [cipher.decrypt(shared or f.iv, f.ciphertext) for f in frames]
    if cipher.iv is not None:
        return decrypt_many(cipher.key, cipher.iv, [f.ciphertext for f in frames])
    return decrypt_many(cipher.key, [f.iv for f in frames], [f.ciphertext for f in frames])


def parse_v1_frame(text: Union[str, bytes]) -> Incoming:
    """Decode a v1 text frame of either direction."""
    message = load_json_object(text, "v1 frame")
    raw_id = message.get("id", message.get("invoke_id"))
    call_id = None
    if raw_id is not None:
        try:
            call_id = int(raw_id)
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"v1 frame has a non-numeric call id {raw_id!r}") from exc
        if call_id < 0:
            raise ProtocolError("v1 frame has a negative call id")
    if "error" in message and "json_payload" not in message:
        return Incoming(ENVELOPE_ERROR, call_id, error=str(message["error"]))
    payload = message.get("json_payload")
    if not isinstance(payload, str):
        raise ProtocolError("v1 frame has no json_payload string")
    if call_id is None:
        raise ProtocolError("v1 frame has no call id")
    token = message.get("token")
    if token is not None and not isinstance(token, str):
        raise ProtocolError("v1 token must be a string")
    targets = message.get("target_fingerprint") or []
    return Incoming(
        SEALED,
        call_id,
        ciphertext=crypto.b64_decode(payload),
        client_end=message.get("client_end") is True,
        token=token,
        target_fingerprint=targets if isinstance(targets, list) else [],
    )


_SEALED_HEAD = struct.Struct(">BBQH")  # version, type, call id, metadata length


def parse_v2_frame(frame: bytes, *, from_server: bool) -> Incoming:
    """Decode a v2 binary frame; key-exchange layouts differ per direction."""
    # Fast path for the common case, an encrypted frame with an IV: one unpack
    # and three slices (every row of a large result comes through here).
    if len(frame) > 13:
        version, frame_type, call_id, metadata_length = _SEALED_HEAD.unpack_from(frame)
        iv_at = 12 + metadata_length
        if version == frames_v2.VERSION and frame_type != frames_v2.KEY_EXCHANGE and len(frame) > iv_at:
            iv_end = iv_at + 1 + frame[iv_at]
            if iv_end > iv_at + 1 and len(frame) >= iv_end:
                metadata = frames_v2.decode_metadata(frame[12:iv_at]) if metadata_length else {}
                return Incoming(
                    SEALED,
                    call_id,
                    ciphertext=frame[iv_end:],
                    iv=frame[iv_at + 1:iv_end],
                    metadata=metadata,
                    client_end=metadata.get("client_end") is True,
                )
    frame_type, call_id = frames_v2.read_preamble(frame)
    if frame_type == frames_v2.KEY_EXCHANGE:
        decode = frames_v2.decode_server_key_exchange if from_server else frames_v2.decode_client_key_exchange
        exchange = decode(frame)
        metadata = getattr(exchange, "metadata", {})
        return Incoming(KEY_EXCHANGE, call_id, metadata=metadata, key_exchange=exchange)
    sealed = frames_v2.decode_sealed(frame)
    if not sealed.iv:
        error = sealed.metadata.get("error")
        return Incoming(ENVELOPE_ERROR, call_id, metadata=sealed.metadata, error=str(error or "envelope error"))
    return Incoming(
        SEALED,
        call_id,
        ciphertext=sealed.ciphertext,
        iv=sealed.iv,
        metadata=sealed.metadata,
        client_end=sealed.metadata.get("client_end") is True,
    )


# --------------------------------------------------------------------------- client


class ClientSession:
    """Client half of one connection. Subclasses implement one generation."""

    generation: str = ""
    binary: bool = False

    def __init__(
        self,
        private_key,
        volt_public_key,
        audience: str,
        *,
        session_id: Optional[str] = None,
        relay_hops: Optional[list[str]] = None,
        clock: Callable[[], float] = _now,
    ) -> None:
        self.private_key = private_key
        self.volt_public_key = volt_public_key
        self.audience = audience
        self.session_id = session_id
        self.relay_hops = relay_hops or []
        self.clock = clock
        self._ciphers: dict[int, _CallCipher] = {}

    def open_call(self, call_id: int, invoke: bytes) -> list[Frame]:
        """Start a call whose first inner message is ``invoke`` (already encoded)."""
        raise NotImplementedError

    def send(self, call_id: int, inner: bytes, *, client_end: bool = False) -> list[Frame]:
        """Frames carrying one more inner message of an open call."""
        raise NotImplementedError

    def receive(self, frame: Frame) -> Incoming:
        raise NotImplementedError

    def accept_key_exchange(self, incoming: Incoming) -> list[Frame]:
        """v2 only: verify the Volt's key-exchange reply and release queued frames."""
        raise ProtocolError("this protocol generation has no key exchange")

    def open(self, call_id: int, frames: list[Incoming]) -> list[bytes]:
        """Decrypt the sealed frames of one call, in one batch."""
        cipher = self._ciphers.get(call_id)
        if cipher is None:
            raise ProtocolError(f"no keys for call {call_id}")
        return _open_many(cipher, frames)

    def open_batch(self, call_id: int, frames: list[Frame]) -> DecryptedBatch:
        """Decrypt sealed frames of one call as they were received, plaintexts left in
        one buffer (:mod:`volt_data.protocol.batch_open`)."""
        cipher = self._ciphers.get(call_id)
        if cipher is None:
            raise ProtocolError(f"no keys for call {call_id}")
        return self._open_batch(cipher, call_id, frames)

    def _open_batch(self, cipher: _CallCipher, call_id: int, frames: list[Frame]) -> DecryptedBatch:
        raise NotImplementedError

    def is_ready(self, call_id: int) -> bool:
        return call_id in self._ciphers

    def forget(self, call_id: int) -> None:
        self._ciphers.pop(call_id, None)


def _sealed(incoming: Incoming, call_id: int) -> Incoming:
    """``incoming`` if it is a sealed frame of ``call_id``, else a ProtocolError."""
    if incoming.kind != SEALED or incoming.call_id != call_id:
        raise ProtocolError(f"expected a sealed frame of call {call_id}, got a {incoming.kind} frame of call {incoming.call_id}")
    return incoming


class ClientV1Session(ClientSession):
    """v1: JSON text frames, RS256 token, RSA-OAEP-wrapped AES key and IV per call."""

    generation = "v1"
    binary = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.kid = crypto.fingerprint_v1(self.private_key.public_key())

    def open_call(self, call_id: int, invoke: bytes) -> list[Frame]:
        cipher = _CallCipher(crypto.random_bytes(32), crypto.random_bytes(16))
        self._ciphers[call_id] = cipher
        token = tokens.make_v1_token(
            self.private_key,
            self.kid,
            self.audience,
            crypto.b64_encode(crypto.rsa_oaep_encrypt(self.volt_public_key, cipher.key)),
            crypto.b64_encode(crypto.rsa_oaep_encrypt(self.volt_public_key, cipher.iv)),
            int(self.clock()),
        )
        frame = {
            "id": call_id,
            "token": token,
            "target_fingerprint": list(self.relay_hops),
            "json_payload": _seal_v1(cipher, invoke),
        }
        return [orjson.dumps(frame).decode()]

    def send(self, call_id: int, inner: bytes, *, client_end: bool = False) -> list[Frame]:
        cipher = self._ciphers.get(call_id)
        if cipher is None:
            raise ProtocolError(f"call {call_id} is not open")
        frame: dict = {"id": call_id}
        if client_end:
            frame["client_end"] = True
        frame["json_payload"] = _seal_v1(cipher, inner)
        return [orjson.dumps(frame).decode()]

    def receive(self, frame: Frame) -> Incoming:
        if isinstance(frame, bytes):
            raise ProtocolError("a v1 connection received a binary frame")
        return parse_v1_frame(frame)

    def _open_batch(self, cipher: _CallCipher, call_id: int, frames: list[Frame]) -> DecryptedBatch:
        def ciphertext(frame: Frame) -> bytes:
            return _sealed(parse_v1_frame(frame), call_id).ciphertext

        return batch_open.open_v1_frames(cipher.key, cipher.iv, call_id, frames, ciphertext)


@dataclass
class _PendingExchange:
    exchange_key: x25519.X25519PrivateKey
    queue: list = field(default_factory=list)  # (inner bytes, client_end)


class ClientV2Session(ClientSession):
    """v2: binary frames, EdDSA token, X25519 key exchange per call, fresh IV per frame."""

    generation = "v2"
    binary = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[int, _PendingExchange] = {}

    def open_call(self, call_id: int, invoke: bytes) -> list[Frame]:
        exchange_key = x25519.X25519PrivateKey.generate()
        claims = tokens.make_v2_claims(
            self.audience,
            self.session_id,
            crypto.x25519_public_der(exchange_key.public_key()),
            int(self.clock()),
        )
        signature = tokens.sign_v2_claims(self.private_key, claims)
        metadata = {"d": list(self.relay_hops)} if self.relay_hops else None
        pending = _PendingExchange(exchange_key)
        pending.queue.append((invoke, False, frames_v2.INVOKE))
        self._pending[call_id] = pending
        return [frames_v2.encode_client_key_exchange(call_id, metadata, signature, claims)]

    def send(self, call_id: int, inner: bytes, *, client_end: bool = False) -> list[Frame]:
        pending = self._pending.get(call_id)
        if pending is not None:  # the client queues until the key exchange completes
            pending.queue.append((inner, client_end, frames_v2.PAYLOAD))
            return []
        return [self._seal(call_id, inner, client_end, frames_v2.PAYLOAD)]

    def _seal(self, call_id: int, inner: bytes, client_end: bool, frame_type: int) -> bytes:
        cipher = self._ciphers.get(call_id)
        if cipher is None:
            raise ProtocolError(f"call {call_id} is not open")
        iv = crypto.random_bytes(16)
        metadata = {"client_end": True} if client_end else None
        return frames_v2.encode_sealed(
            frame_type, call_id, metadata, iv, cipher.encrypt(iv, inner)
        )

    def receive(self, frame: Frame) -> Incoming:
        if isinstance(frame, str):
            raise ProtocolError("a v2 connection received a text frame")
        return parse_v2_frame(frame, from_server=True)

    def _open_batch(self, cipher: _CallCipher, call_id: int, frames: list[Frame]) -> DecryptedBatch:
        def iv_and_ciphertext(frame: Frame) -> tuple[bytes, bytes]:
            incoming = _sealed(parse_v2_frame(frame, from_server=True), call_id)
            return incoming.iv, incoming.ciphertext

        return batch_open.open_v2_frames(cipher.key, frames, iv_and_ciphertext)

    def accept_key_exchange(self, incoming: Incoming) -> list[Frame]:
        call_id = incoming.call_id
        pending = self._pending.get(call_id)
        if pending is None:
            raise ProtocolError(f"unexpected key exchange for call {call_id}")
        exchange: frames_v2.ServerKeyExchange = incoming.key_exchange
        if not crypto.ed25519_verify(
            self.volt_public_key, exchange.signature, exchange.public_key_der + exchange.nonce
        ):
            raise AuthenticationError("the Volt's key-exchange signature does not match volt.public_key")
        server_key = crypto.x25519_from_der(exchange.public_key_der)
        key = crypto.derive_v2_key(pending.exchange_key.exchange(server_key))
        del self._pending[call_id]
        self._ciphers[call_id] = _CallCipher(key)
        return [self._seal(call_id, inner, end, ftype) for inner, end, ftype in pending.queue]

    def is_ready(self, call_id: int) -> bool:
        return call_id in self._ciphers

    def forget(self, call_id: int) -> None:
        super().forget(call_id)
        self._pending.pop(call_id, None)


def client_session_for(private_key, volt_public_key, audience: str, **kwargs) -> ClientSession:
    """The session class the key types call for: RSA -> v1, Ed25519 -> v2."""
    if isinstance(private_key, rsa.RSAPrivateKey) and isinstance(volt_public_key, rsa.RSAPublicKey):
        return ClientV1Session(private_key, volt_public_key, audience, **kwargs)
    if isinstance(private_key, ed25519.Ed25519PrivateKey) and isinstance(
        volt_public_key, ed25519.Ed25519PublicKey
    ):
        return ClientV2Session(private_key, volt_public_key, audience, **kwargs)
    raise ProtocolError(
        "credential.key and volt.public_key must both be RSA (protocol v1) or both Ed25519 (protocol v2)"
    )


# --------------------------------------------------------------------------- server

KeyLookup = Callable[[str], object]  # kid (v1) or session id (v2) -> public key, or None


@dataclass(frozen=True)
class Caller:
    """Who opened a call, as established by its token."""

    generation: str
    key_id: str  # v1: key fingerprint (kid); v2: session id (sub)


class ServerSession:
    """Volt half of one connection, both generations (text frames v1, binary v2).

    ``v1_keys(kid)`` and ``v2_keys(sub)`` return the registered client public key
    or None. Calls are authenticated when they open; an unauthenticated call
    gets no cipher, so nothing it sends can ever be decrypted or executed.
    """

    def __init__(
        self,
        volt_id: str,
        *,
        rsa_private_key: Optional[rsa.RSAPrivateKey] = None,
        ed25519_private_key: Optional[ed25519.Ed25519PrivateKey] = None,
        v1_keys: KeyLookup = lambda kid: None,
        v2_keys: KeyLookup = lambda sub: None,
        clock: Callable[[], float] = _now,
        seen_tokens: Optional[tokens.SeenTokens] = None,
    ) -> None:
        self.volt_id = volt_id
        self.seen_tokens = seen_tokens if seen_tokens is not None else tokens.SeenTokens()
        self.rsa_private_key = rsa_private_key
        self.ed25519_private_key = ed25519_private_key
        self.v1_keys = v1_keys
        self.v2_keys = v2_keys
        self.clock = clock
        self._ciphers: dict[tuple[str, int], _CallCipher] = {}
        # Batch encryption contexts, each with the cipher it was made for.
        self._sealers: dict[tuple[str, int], tuple[_CallCipher, batch_seal.BatchSealer]] = {}

    #: Standard base64 without a newline, as bytes (``crypto.b64_encode`` of v1 frames).
    _B64_LINE = functools.partial(binascii.b2a_base64, newline=False)

    # -- decoding

    @staticmethod
    def receive(frame: Frame) -> tuple[str, Incoming]:
        """(generation, decoded frame): text frames are v1, binary frames v2."""
        if isinstance(frame, str):
            return "v1", parse_v1_frame(frame)
        return "v2", parse_v2_frame(frame, from_server=False)

    def has_call(self, generation: str, call_id: int) -> bool:
        return (generation, call_id) in self._ciphers

    # -- opening calls

    def accept_v1_call(self, incoming: Incoming) -> Caller:
        """Verify a v1 first frame's token and install the call's key and IV.

        The key is unwrapped before the signature is checked so that a refused
        call can still be told why, encrypted, as the client expects; the call is
        only marked usable after every check passed.
        """
        if self.rsa_private_key is None:
            raise AuthenticationError("this Volt has no RSA key: protocol v1 is not served")
        token = tokens.parse_v1_token(incoming.token or "")
        wrapped_key, wrapped_iv = token.claims.get("sk"), token.claims.get("iv")
        if not isinstance(wrapped_key, str) or not isinstance(wrapped_iv, str):
            raise AuthenticationError("token carries no session key")
        key = crypto.rsa_oaep_decrypt(self.rsa_private_key, crypto.b64_decode(wrapped_key))
        iv = crypto.rsa_oaep_decrypt(self.rsa_private_key, crypto.b64_decode(wrapped_iv))
        if len(key) != 32 or len(iv) != 16:
            raise AuthenticationError("session key or IV has the wrong length")
        cipher = _CallCipher(key, iv)
        public_key = self.v1_keys(token.kid)
        try:
            if public_key is None:
                raise AuthenticationError(f"unknown client key {token.kid}")
            tokens.verify_v1_signature(token, public_key)
            now = self.clock()
            tokens.check_claims(token.claims, self.volt_id, now)
            self.seen_tokens.claim(token.signature, token.claims["exp"] + tokens.CLOCK_LEEWAY_SECONDS, now)
        except AuthenticationError as exc:
            exc.refusal_cipher = cipher  # lets the caller encrypt the refusal
            raise
        self._ciphers[("v1", incoming.call_id)] = cipher
        return Caller("v1", token.kid)

    def refuse_v1_call(self, call_id: int, error: AuthenticationError | ProtocolError, reason: str) -> Frame:
        """The frame that tells a v1 client its call was refused."""
        cipher = getattr(error, "refusal_cipher", None)
        if cipher is None:
            return self.envelope_error("v1", call_id, reason)
        from volt_data.protocol.envelope import encode_end

        return orjson.dumps({"invoke_id": call_id, "json_payload": _seal_v1(cipher, encode_end(reason))}).decode()

    def accept_v2_call(self, incoming: Incoming) -> tuple[Caller, Frame]:
        """Verify a v2 key-exchange token; returns the caller and the signed reply frame."""
        if self.ed25519_private_key is None:
            raise AuthenticationError("this Volt has no Ed25519 key: protocol v2 is not served")
        exchange: frames_v2.ClientKeyExchange = incoming.key_exchange
        claims = tokens.parse_v2_claims(exchange.claims)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthenticationError("token has no session id (sub)")
        public_key = self.v2_keys(subject)
        if public_key is None:
            raise AuthenticationError(f"unknown session {subject}")
        tokens.verify_v2_signature(public_key, exchange.claims, exchange.signature)
        now = self.clock()
        tokens.check_claims(claims, self.volt_id, now)
        self.seen_tokens.claim(exchange.signature, claims["exp"] + tokens.CLOCK_LEEWAY_SECONDS, now)
        exchange_b64 = claims.get("k")
        if not isinstance(exchange_b64, str):
            raise AuthenticationError("token carries no exchange key (k)")
        client_exchange = crypto.x25519_from_der(crypto.b64_decode(exchange_b64))
        server_exchange = x25519.X25519PrivateKey.generate()
        key = crypto.derive_v2_key(server_exchange.exchange(client_exchange))
        self._ciphers[("v2", incoming.call_id)] = _CallCipher(key)
        public_der = crypto.x25519_public_der(server_exchange.public_key())
        nonce = os.urandom(16)
        signature = self.ed25519_private_key.sign(public_der + nonce)
        reply = frames_v2.encode_server_key_exchange(incoming.call_id, public_der, nonce, signature)
        return Caller("v2", subject), reply

    # -- per-call traffic

    def open(self, generation: str, call_id: int, frames: list[Incoming]) -> list[bytes]:
        cipher = self._ciphers.get((generation, call_id))
        if cipher is None:
            raise ProtocolError(f"call {call_id} is not open on this connection")
        return _open_many(cipher, frames)

    def seal(self, generation: str, call_id: int, inner: bytes) -> Frame:
        cipher = self._ciphers.get((generation, call_id))
        if cipher is None:
            raise ProtocolError(f"call {call_id} is not open on this connection")
        if generation == "v1":
            return orjson.dumps({"invoke_id": call_id, "json_payload": _seal_v1(cipher, inner)}).decode()
        iv = os.urandom(16)
        return frames_v2.encode_sealed(
            frames_v2.PAYLOAD, call_id, None, iv, cipher.encrypt(iv, inner)
        )

    def seal_many(self, generation: str, call_id: int, inners: list[bytes], *,
                  encoded: bool = False) -> list[Frame]:
        """The frames ``[seal(generation, call_id, inner) for inner in inners]`` gives,
        encrypted in one batch (:mod:`~volt_data.protocol.batch_seal`).

        Same bytes on the wire: every v2 frame gets its own random IV, every v1
        frame the call's IV, each message its own CBC chain and padding. With
        ``encoded=True`` v1 frames come as UTF-8 bytes (what a websocket text
        message carries) instead of str.
        """
        if not inners:
            self._sealer(generation, call_id)  # the call must be open all the same
            return []
        columns, _ = self._frame_columns(generation, call_id, inners, b"", b"")
        frames = list(map(b"".join, zip(*columns)))
        return frames if encoded or generation == "v2" else [frame.decode() for frame in frames]

    def seal_payloads(self, generation: str, call_id: int, texts: list[str],
                      headers: Mapping[int, bytes]) -> bytes:
        """The frames of ``seal(generation, call_id, encode_payload(text))`` for every
        text, joined, each preceded by ``headers[len(frame)]`` (v1 frames as UTF-8).

        The hot path for result rows: ``headers`` gives a transport's per-frame
        prefix (a websocket frame header), so a whole batch leaves as one bytes
        object, made without a Python step per frame.
        """
        if not texts:
            self._sealer(generation, call_id)
            return b""
        bodies = batch_seal.payload_bodies(texts)
        columns, lengths = self._frame_columns(
            generation, call_id, bodies, batch_seal.PAYLOAD_PREFIX, batch_seal.PAYLOAD_SUFFIX
        )
        columns.insert(0, map(headers.__getitem__, lengths))
        width = len(columns)
        parts: list[bytes] = [b""] * (width * len(texts))
        for index, column in enumerate(columns):
            parts[index::width] = column
        return b"".join(parts)

    def _sealer(self, generation: str, call_id: int) -> tuple[_CallCipher, batch_seal.BatchSealer]:
        key = (generation, call_id)
        cipher = self._ciphers.get(key)
        if cipher is None:
            raise ProtocolError(f"call {call_id} is not open on this connection")
        cached = self._sealers.get(key)
        if cached is None or cached[0] is not cipher:  # a reused call id has a new key
            cached = self._sealers[key] = (cipher, batch_seal.BatchSealer(cipher.key))
        return cached

    def _frame_columns(self, generation: str, call_id: int, bodies: list[bytes],
                       prefix: bytes, suffix: bytes) -> tuple[list, list[int]]:
        """Sealed frames of ``prefix + body + suffix`` for each body, as columns of
        pieces (frame ``i`` is the join of every column's item ``i``), and the
        frame lengths."""
        cipher, sealer = self._sealer(generation, call_id)
        count = len(bodies)
        if generation == "v1":
            joined, offsets = sealer.encrypt_joined(cipher.iv, bodies, prefix=prefix, suffix=suffix)
            # orjson.dumps({"invoke_id": call_id, "json_payload": base64}), piece by piece.
            head, tail = b'{"invoke_id":%d,"json_payload":"' % call_id, b'"}'
            encoded = list(map(self._B64_LINE, batch_seal.split_joined(joined, offsets)))
            lengths = list(map((len(head) + len(tail)).__add__, map(len, encoded)))
            return [[head] * count, encoded, [tail] * count], lengths
        block = crypto.AES_BLOCK_BYTES
        ivs = os.urandom(block * count)
        joined, offsets = sealer.encrypt_joined(ivs, bodies, prefix=prefix, suffix=suffix, with_ivs=True)
        # frames_v2.encode_sealed(PAYLOAD, call_id, None, iv, ciphertext), as head + (iv + ciphertext).
        head = frames_v2.encode_sealed(frames_v2.PAYLOAD, call_id, None, bytes(block), b"")[:-block]
        sealed = batch_seal.split_joined(joined, offsets)
        lengths = list(map(len(head).__add__, map(len, sealed)))
        return [[head] * count, sealed], lengths

    @staticmethod
    def envelope_error(generation: str, call_id: Optional[int], text: str) -> Frame:
        """An unencrypted failure report for a call that has (or can have) no keys."""
        if generation == "v1":
            frame: dict = {"error": text}
            if call_id is not None:
                frame["invoke_id"] = call_id
            return orjson.dumps(frame).decode()
        return frames_v2.encode_sealed(frames_v2.PAYLOAD, call_id or 0, {"error": text}, b"", b"")

    def forget(self, generation: str, call_id: int) -> None:
        self._ciphers.pop((generation, call_id), None)
        self._sealers.pop((generation, call_id), None)
