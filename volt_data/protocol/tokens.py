"""Call tokens of both generations and the checks a Volt applies to them.

v1: a compact RS256 JWT whose header carries ``kid`` (the caller's key
fingerprint) and whose claims carry the RSA-wrapped session key and IV.
v2: an EdDSA JWT whose header is never sent (the server rebuilds it) and whose
claims carry the caller's ephemeral X25519 key ``k`` and session id ``sub``.
"""
from __future__ import annotations

import heapq
import json
from dataclasses import dataclass

import orjson
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from volt_data.errors import AuthenticationError, ProtocolError
from volt_data.protocol import crypto
from volt_data.protocol.json_object import load_json_object

#: Clients back-date ``iat`` and post-date ``exp`` by this much for clock skew.
TOKEN_SLACK_SECONDS = 60
#: A server allows this much extra skew on top of the token's own window.
CLOCK_LEEWAY_SECONDS = 5

V2_HEADER = b'{"alg":"EdDSA","typ":"JWT"}'
V2_HEADER_B64 = crypto.b64url_encode(V2_HEADER)  # eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9


@dataclass(frozen=True)
class V1Token:
    """A parsed (not yet verified) v1 token."""

    kid: str
    claims: dict
    signing_input: bytes
    signature: bytes


def make_v1_token(
    private_key: rsa.RSAPrivateKey, kid: str, audience: str, wrapped_key: str, wrapped_iv: str, now: int
) -> str:
    # The reference client serialises with Python's default separators; keep that
    # so our tokens are byte-for-byte of the same shape.
    header = json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid})
    claims = json.dumps(
        {
            "aud": audience,
            "iat": now - TOKEN_SLACK_SECONDS,
            "exp": now + TOKEN_SLACK_SECONDS,
            "sk": wrapped_key,
            "iv": wrapped_iv,
        }
    )
    signing_input = f"{crypto.b64url_encode(header.encode())}.{crypto.b64url_encode(claims.encode())}"
    signature = crypto.rsa_sign(private_key, signing_input.encode("ascii"))
    return f"{signing_input}.{crypto.b64url_encode(signature)}"


def parse_v1_token(token: str) -> V1Token:
    if not isinstance(token, str) or token.count(".") != 2:
        raise AuthenticationError("token is not a compact JWT")
    header_b64, claims_b64, signature_b64 = token.split(".")
    try:
        header = orjson.loads(crypto.b64url_decode(header_b64))
        claims = orjson.loads(crypto.b64url_decode(claims_b64))
    except (orjson.JSONDecodeError, ProtocolError) as exc:
        raise AuthenticationError("token header or claims are not base64url JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AuthenticationError("token header and claims must be JSON objects")
    if header.get("alg") != "RS256":
        raise AuthenticationError(f"token algorithm {header.get('alg')!r} is not RS256")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AuthenticationError("token has no kid")
    return V1Token(
        kid=kid,
        claims=claims,
        signing_input=f"{header_b64}.{claims_b64}".encode("ascii"),
        signature=crypto.b64url_decode(signature_b64),
    )


def verify_v1_signature(token: V1Token, public_key: rsa.RSAPublicKey) -> None:
    if not crypto.rsa_verify(public_key, token.signature, token.signing_input):
        raise AuthenticationError("token signature does not verify against the caller's key")


def make_v2_claims(audience: str, session_id: str | None, exchange_key_der: bytes, now: int) -> bytes:
    claims: dict = {"aud": audience, "iat": now - TOKEN_SLACK_SECONDS, "exp": now + TOKEN_SLACK_SECONDS}
    if session_id:
        claims["sub"] = session_id
    claims["k"] = crypto.b64_encode(exchange_key_der)
    return orjson.dumps(claims)


def v2_signing_input(claims: bytes) -> bytes:
    return f"{V2_HEADER_B64}.{crypto.b64url_encode(claims)}".encode("ascii")


def sign_v2_claims(private_key: ed25519.Ed25519PrivateKey, claims: bytes) -> bytes:
    return private_key.sign(v2_signing_input(claims))


def parse_v2_claims(claims: bytes) -> dict:
    return load_json_object(claims, "token claims", AuthenticationError)


def verify_v2_signature(public_key: ed25519.Ed25519PublicKey, claims: bytes, signature: bytes) -> None:
    if not crypto.ed25519_verify(public_key, signature, v2_signing_input(claims)):
        raise AuthenticationError("token signature does not verify against the caller's key")


def check_claims(claims: dict, audience: str, now: float, leeway: int = CLOCK_LEEWAY_SECONDS) -> None:
    """Audience and validity window, the same rule for both generations."""
    if claims.get("aud") != audience:
        raise AuthenticationError(f"token audience {claims.get('aud')!r} is not this Volt")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, (int, float)) or not isinstance(exp, (int, float)):
        raise AuthenticationError("token has no numeric iat/exp")
    if now + leeway < iat:
        raise AuthenticationError("token is not yet valid (iat is in the future)")
    if now - leeway > exp:
        raise AuthenticationError("token has expired")


class SeenTokens:
    """Signatures of the tokens a Volt has accepted, kept until they expire.

    Neither generation carries a nonce, so a token captured on the wire would
    otherwise open a second call anywhere inside its validity window (a v1
    replay would even run the captured request again). Clients make a fresh
    token for every call, so a signature seen twice is a replay. One instance
    serves every connection of a server.
    """

    def __init__(self) -> None:
        self._expiry: dict[bytes, float] = {}
        self._by_time: list[tuple[float, bytes]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def claim(self, signature: bytes, expires: float, now: float) -> None:
        """Record a token's first use; raise AuthenticationError on a second one."""
        while self._by_time and self._by_time[0][0] < now:
            _, old = heapq.heappop(self._by_time)
            self._expiry.pop(old, None)
        if signature in self._expiry:
            raise AuthenticationError("token was already used: a replayed call is refused")
        self._expiry[signature] = expires
        heapq.heappush(self._by_time, (expires, signature))
