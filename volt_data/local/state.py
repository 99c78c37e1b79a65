"""What a local Volt remembers between runs: who it is and who may call it.

Everything lives under one data directory as small JSON/PEM files:

* ``volt.json`` — Volt id (``did:volt:<uuid4>``), display name, last address;
* ``keys/volt-rsa.pem`` (v1) and ``keys/volt-ed25519.pem`` (v2) — mode 0600;
* ``tls/`` — the Volt's CA and loopback server certificate (:mod:`.tls`);
* ``identities.json`` — registered client identities with their private keys
  (the Volt issues the client configs, so it holds them), mode 0600.

Each identity has an RSA key (for v1 configs, found by its fingerprint = the
token's ``kid``) and an Ed25519 key plus a session id (for v2 configs, found by
the token's ``sub``), so one identity can be handed out in both generations.
"""
from __future__ import annotations

import json
import pathlib
import threading
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from volt_data.local.call import ACCESS_LEVELS, Identity
from volt_data.local.tls import TlsMaterial, ensure_tls_material, write_private_text
from volt_data.protocol import crypto

__all__ = ["IdentityRecord", "VoltState"]

DEFAULT_DISPLAY_NAME = "local Volt"


def _private_pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _new_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _load_or_create_key(path: pathlib.Path, generate) -> Any:
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    key = generate()
    write_private_text(path, _private_pem(key))
    return key


@dataclass
class IdentityRecord:
    """One registered client identity and its key material (both generations)."""

    id: str
    name: str
    access: str
    rsa_key_pem: str
    ed25519_key_pem: str
    session_id: str
    extra: dict = field(default_factory=dict)

    @cached_property
    def rsa_key(self) -> rsa.RSAPrivateKey:
        return serialization.load_pem_private_key(self.rsa_key_pem.encode(), password=None)

    @cached_property
    def ed25519_key(self) -> ed25519.Ed25519PrivateKey:
        return serialization.load_pem_private_key(self.ed25519_key_pem.encode(), password=None)

    @cached_property
    def fingerprint(self) -> str:
        """The v1 fingerprint of the identity's RSA public key (the token ``kid``)."""
        return crypto.fingerprint_v1(self.rsa_key.public_key())

    def identity(self, protocol: str = "v2") -> Identity:
        """The handler-facing view of this identity for a call of ``protocol``."""
        return Identity(id=self.id, name=self.name, access=self.access, protocol=protocol)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "access": self.access,
            "rsa_key": self.rsa_key_pem,
            "ed25519_key": self.ed25519_key_pem,
            "session_id": self.session_id,
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_json(cls, data: dict) -> IdentityRecord:
        return cls(
            id=data["id"],
            name=data["name"],
            access=data["access"],
            rsa_key_pem=data["rsa_key"],
            ed25519_key_pem=data["ed25519_key"],
            session_id=data["session_id"],
            extra=data.get("extra") or {},
        )


class VoltState:
    """The Volt's identity, keys and registered clients under ``data_dir``.

    Creating it on an empty directory generates everything; on an existing one
    it loads what is there. Lookups are thread-safe: the server reads them from
    its event loop while a script registers new identities from another thread.
    """

    def __init__(self, data_dir: pathlib.Path | str) -> None:
        self.data_dir = pathlib.Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._info_path = self.data_dir / "volt.json"
        info = json.loads(self._info_path.read_text()) if self._info_path.exists() else {}
        if "id" not in info:
            info = {"id": f"did:volt:{uuid.uuid4()}", "display_name": DEFAULT_DISPLAY_NAME, **info}
            self._write_info(info)
        self._info = info
        keys = self.data_dir / "keys"
        keys.mkdir(exist_ok=True)
        self.rsa_key: rsa.RSAPrivateKey = _load_or_create_key(keys / "volt-rsa.pem", _new_rsa)
        self.ed25519_key: ed25519.Ed25519PrivateKey = _load_or_create_key(
            keys / "volt-ed25519.pem", ed25519.Ed25519PrivateKey.generate
        )
        self.tls: TlsMaterial = ensure_tls_material(self.data_dir / "tls", self.volt_id)
        self._identities_path = self.data_dir / "identities.json"
        self._by_name: dict[str, IdentityRecord] = {}
        self._by_fingerprint: dict[str, IdentityRecord] = {}
        self._by_session: dict[str, IdentityRecord] = {}
        if self._identities_path.exists():
            for data in json.loads(self._identities_path.read_text()):
                self._index(IdentityRecord.from_json(data))

    # ----------------------------------------------------------------- the Volt

    @property
    def volt_id(self) -> str:
        return self._info["id"]

    @property
    def display_name(self) -> str:
        return self._info.get("display_name") or DEFAULT_DISPLAY_NAME

    @property
    def last_http_address(self) -> str | None:
        """The address the Volt last served on (configs written offline point there)."""
        return self._info.get("http_address")

    def remember_address(self, http_address: str) -> None:
        with self._lock:
            if self._info.get("http_address") != http_address:
                self._info = {**self._info, "http_address": http_address}
                self._write_info(self._info)

    def _write_info(self, info: dict) -> None:
        self._info_path.write_text(json.dumps(info, indent=2) + "\n")

    def public_key_pem(self, protocol: str) -> str:
        """The Volt public key a client of ``protocol`` is given (RSA for v1, Ed25519 for v2)."""
        key = self.rsa_key if protocol == "v1" else self.ed25519_key
        return crypto.public_key_pem(key.public_key())

    def fingerprint(self, protocol: str) -> str:
        """Fingerprint of the Volt key of ``protocol`` (v1: over the PEM text; v2: over the raw key)."""
        if protocol == "v1":
            return crypto.fingerprint_v1(self.rsa_key.public_key())
        return crypto.fingerprint_v2(self.ed25519_key.public_key())

    # --------------------------------------------------------------- identities

    def _index(self, record: IdentityRecord) -> None:
        self._by_name[record.name] = record
        self._by_fingerprint[record.fingerprint] = record
        self._by_session[record.session_id] = record

    def _save_identities(self) -> None:
        records = [r.to_json() for r in self._by_name.values()]
        write_private_text(self._identities_path, json.dumps(records, indent=2) + "\n")

    def register(self, name: str, access: str = "owner") -> IdentityRecord:
        """The identity called ``name``, created with both key pairs if new.

        Registering an existing name again returns it unchanged; asking for a
        different ``access`` than it has is a ValueError (access is not changed
        silently).
        """
        if access not in ACCESS_LEVELS:
            raise ValueError(f"access must be one of {', '.join(ACCESS_LEVELS)}, got {access!r}")
        if not name:
            raise ValueError("an identity needs a non-empty name")
        with self._lock:
            existing = self._by_name.get(name)
            if existing is not None:
                if existing.access != access:
                    raise ValueError(
                        f"identity {name!r} already exists with access {existing.access!r}, not {access!r}"
                    )
                return existing
            record = IdentityRecord(
                id=str(uuid.uuid4()),
                name=name,
                access=access,
                rsa_key_pem=_private_pem(_new_rsa()),
                ed25519_key_pem=_private_pem(ed25519.Ed25519PrivateKey.generate()),
                session_id=str(uuid.uuid4()),
            )
            self._index(record)
            self._save_identities()
            return record

    def get(self, name: str) -> IdentityRecord | None:
        """The identity registered as ``name``, if any."""
        return self._by_name.get(name)

    def identities(self) -> list[IdentityRecord]:
        """Every registered identity, in registration order."""
        return list(self._by_name.values())

    def by_fingerprint(self, kid: str) -> IdentityRecord | None:
        """The identity whose RSA key has v1 fingerprint ``kid``."""
        return self._by_fingerprint.get(kid)

    def by_session(self, session_id: str) -> IdentityRecord | None:
        """The identity whose v2 session id is ``session_id``."""
        return self._by_session.get(session_id)

    def v1_public_key(self, kid: str) -> rsa.RSAPublicKey | None:
        """Key lookup for :class:`~volt_data.protocol.ServerSession` (v1, by ``kid``)."""
        record = self._by_fingerprint.get(kid)
        return None if record is None else record.rsa_key.public_key()

    def v2_public_key(self, session_id: str) -> ed25519.Ed25519PublicKey | None:
        """Key lookup for :class:`~volt_data.protocol.ServerSession` (v2, by ``sub``)."""
        record = self._by_session.get(session_id)
        return None if record is None else record.ed25519_key.public_key()

    # ------------------------------------------------------------ client configs

    def client_config(
        self,
        record: IdentityRecord,
        *,
        protocol: str,
        http_address: str,
        passphrase: str | bytes | None = None,
    ) -> dict:
        """A fusebox-format client config for ``record`` against this Volt.

        ``protocol`` picks the key pair: RSA for ``"v1"``, Ed25519 for ``"v2"``.
        With a ``passphrase`` the private key is written as encrypted PKCS#8.
        """
        if protocol not in ("v1", "v2"):
            raise ValueError(f"protocol must be 'v1' or 'v2', got {protocol!r}")
        key = record.rsa_key if protocol == "v1" else record.ed25519_key
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
        if passphrase:
            secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
            encryption = serialization.BestAvailableEncryption(secret)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        ).decode("ascii")
        credential: dict[str, Any] = {"client_id": record.id, "key": key_pem}
        if protocol == "v2":
            credential["session_id"] = record.session_id
        credential["identity_did"] = f"did:volt:identity:{record.id}"
        host_port = http_address.split("://", 1)[-1].rstrip("/")
        return {
            "client_name": record.name,
            "credential": credential,
            "volt": {
                "id": self.volt_id,
                "display_name": self.display_name,
                "address": host_port,
                "http_address": http_address,
                "public_key": self.public_key_pem(protocol),
                "fingerprint": self.fingerprint(protocol),
                "ca_pem": self.tls.ca_pem,
            },
        }
