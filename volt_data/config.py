"""The fusebox client configuration: load it, check it, and hold its keys.

A config is the JSON object the Volt's fusebox exports for a client identity
(``client_name``, ``credential``, ``volt``; protocol reference §1). It may come
as a dict, a path to a JSON file, or the ``VOLT_CONFIG`` environment variable
(a path or the JSON text itself). Each missing or bad field raises its own
:class:`~volt_data.errors.ConfigError` naming the field. Private key material
never appears in a repr, a log line or an exception message.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from volt_data.errors import ConfigError, PassphraseError
from volt_data.protocol import crypto

CONFIG_ENV = "VOLT_CONFIG"
PASSPHRASE_ENV = "VOLT_KEY_PASSPHRASE"

ConfigSource = Union["VoltConfig", Mapping[str, Any], str, os.PathLike, None]


@dataclass(frozen=True, repr=False)
class VoltConfig:
    """A checked client configuration with its keys loaded.

    ``generation`` is ``"v1"`` (RSA keys, JSON text frames) or ``"v2"``
    (Ed25519 keys, binary frames), decided by the key types.
    """

    client_name: str | None
    client_id: str | None
    session_id: str | None
    identity_did: str | None
    volt_id: str
    display_name: str | None
    address: str | None
    http_address: str | None
    relay_address: str | None
    volt_public_key_pem: str
    fingerprint: str | None
    ca_pem: str | None
    generation: str
    private_key: Any = field(compare=False)
    volt_public_key: Any = field(compare=False)
    source: dict = field(compare=False, default_factory=dict)  # the raw config, for compatibility views

    def __repr__(self) -> str:  # never show key material
        return (
            f"VoltConfig(client_name={self.client_name!r}, volt_id={self.volt_id!r}, "
            f"generation={self.generation!r}, url={self.websocket_url()!r})"
        )

    @property
    def is_relayed(self) -> bool:
        return self.relay_address is not None

    def websocket_url(self, override_address: str | None = None) -> str:
        """The websocket URL per reference §2: relay or http_address, http->ws, then ``/api``."""
        base = override_address or self.relay_address or self.http_address
        if not base or "://" not in base:
            raise ConfigError(
                f"volt.http_address must be a URL with a scheme, got {base!r}", field="volt.http_address"
            )
        scheme, rest = base.split("://", 1)
        scheme = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme.lower())
        if scheme not in ("ws", "wss"):
            raise ConfigError(f"unsupported URL scheme {scheme!r} in {base!r}", field="volt.http_address")
        return f"{scheme}://{rest}/api"


def load_config(source: ConfigSource = None, *, passphrase: str | bytes | None = None) -> VoltConfig:
    """Load and check a client config from a dict, a JSON file path, or ``$VOLT_CONFIG``.

    ``passphrase`` (or ``$VOLT_KEY_PASSPHRASE``) decrypts an ``ENCRYPTED PRIVATE KEY``.
    """
    if isinstance(source, VoltConfig):
        return source
    raw = _read_source(source)
    return parse_config(raw, passphrase=passphrase)


def _read_source(source: ConfigSource) -> dict:
    if source is None:
        value = os.environ.get(CONFIG_ENV)
        if not value:
            raise ConfigError(
                f"no Volt config given: pass a dict or a file path, or set {CONFIG_ENV}", field=None
            )
        source = value if not value.lstrip().startswith("{") else json.loads(value)
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(os.fspath(source)).expanduser()
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist", field=None)
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a JSON object")
    return raw


def _section(raw: Mapping, name: str) -> Mapping:
    value = raw.get(name)
    if value is None:
        raise ConfigError(f"config has no '{name}' section", field=name)
    if not isinstance(value, Mapping):
        raise ConfigError(f"config '{name}' must be an object", field=name)
    return value


def _string(section: Mapping, key: str, path: str, *, required: bool) -> str | None:
    value = section.get(key)
    if value is None or value == "":
        if required:
            raise ConfigError(f"config field '{path}' is missing", field=path)
        return None
    if not isinstance(value, str):
        raise ConfigError(f"config field '{path}' must be a string, got {type(value).__name__}", field=path)
    return value


def load_private_key(pem: str, passphrase: str | bytes | None = None, *, field_name: str = "credential.key"):
    """Load a PEM private key, decrypting it with ``passphrase`` when it is encrypted."""
    if passphrase is None:
        passphrase = os.environ.get(PASSPHRASE_ENV)
    data = pem.encode("ascii", "replace")
    encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0] or b"Proc-Type: 4,ENCRYPTED" in data
    if encrypted and not passphrase:
        raise PassphraseError(
            f"'{field_name}' is encrypted: pass passphrase=... or set {PASSPHRASE_ENV}", field=field_name
        )
    password = passphrase.encode() if isinstance(passphrase, str) else passphrase
    try:
        return serialization.load_pem_private_key(data, password=password if encrypted else None)
    except ValueError:
        if encrypted:
            raise PassphraseError(f"wrong passphrase for '{field_name}'", field=field_name) from None
        raise ConfigError(f"'{field_name}' is not a readable PEM private key", field=field_name) from None
    except TypeError:
        raise ConfigError(f"'{field_name}' is not a readable PEM private key", field=field_name) from None
    except Exception:  # unsupported cipher and the like: never echo the key
        raise ConfigError(f"'{field_name}' could not be loaded (unsupported key format)", field=field_name) from None


def _volt_public_key(volt: Mapping) -> tuple[Any, str]:
    pem = _string(volt, "public_key", "volt.public_key", required=False)
    if pem is None:
        # The v1 client falls back to the key of the CA certificate; so do we.
        ca_pem = _string(volt, "ca_pem", "volt.ca_pem", required=False)
        if ca_pem is None:
            raise ConfigError("config field 'volt.public_key' is missing (and no volt.ca_pem to take it from)",
                              field="volt.public_key")
        try:
            key = x509.load_pem_x509_certificate(ca_pem.encode()).public_key()
        except ValueError:
            raise ConfigError("'volt.ca_pem' is not a PEM certificate", field="volt.ca_pem") from None
        return key, crypto.public_key_pem(key)
    try:
        return serialization.load_pem_public_key(pem.encode()), pem
    except ValueError:
        raise ConfigError("'volt.public_key' is not a PEM public key", field="volt.public_key") from None


def _relay_address(volt: Mapping) -> str | None:
    relay = volt.get("relay")
    if relay is None or relay == "":
        return None
    if isinstance(relay, str):
        return relay
    if isinstance(relay, Mapping):
        address = relay.get("http_address")
        if address is not None and not isinstance(address, str):
            raise ConfigError("'volt.relay.http_address' must be a string", field="volt.relay.http_address")
        return address or None
    raise ConfigError("'volt.relay' must be a URL string or an object with http_address", field="volt.relay")


def parse_config(raw: Mapping[str, Any], *, passphrase: str | bytes | None = None) -> VoltConfig:
    """Check a config dict and load its keys (see :func:`load_config`)."""
    if not isinstance(raw, Mapping):
        raise ConfigError("config must be a JSON object / dict")
    credential = _section(raw, "credential")
    volt = _section(raw, "volt")
    client_name = raw.get("client_name")
    if client_name is not None and not isinstance(client_name, str):
        raise ConfigError("config field 'client_name' must be a string", field="client_name")
    key_pem = _string(credential, "key", "credential.key", required=True)
    private_key = load_private_key(key_pem, passphrase)
    volt_id = _string(volt, "id", "volt.id", required=True)
    public_key, public_pem = _volt_public_key(volt)
    relay = _relay_address(volt)
    http_address = _string(volt, "http_address", "volt.http_address", required=relay is None)

    if isinstance(private_key, rsa.RSAPrivateKey):
        generation = "v1"
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise ConfigError("'credential.key' is RSA (protocol v1) but 'volt.public_key' is not an RSA key",
                              field="volt.public_key")
    elif isinstance(private_key, ed25519.Ed25519PrivateKey):
        generation = "v2"
        if not isinstance(public_key, ed25519.Ed25519PublicKey):
            raise ConfigError("'credential.key' is Ed25519 (protocol v2) but 'volt.public_key' is not Ed25519",
                              field="volt.public_key")
    else:
        raise ConfigError("'credential.key' must be an RSA (v1) or Ed25519 (v2) private key",
                          field="credential.key")

    fingerprint = _string(volt, "fingerprint", "volt.fingerprint", required=False)
    if generation == "v1":
        fingerprint = fingerprint or crypto.fingerprint_v1(public_pem)
    source = {k: v for k, v in raw.items() if k != "credential"}
    source["credential"] = {k: v for k, v in credential.items() if k != "key"}
    return VoltConfig(
        client_name=client_name,
        client_id=_string(credential, "client_id", "credential.client_id", required=False),
        session_id=_string(credential, "session_id", "credential.session_id", required=False),
        identity_did=_string(credential, "identity_did", "credential.identity_did", required=False),
        volt_id=volt_id,
        display_name=_string(volt, "display_name", "volt.display_name", required=False),
        address=_string(volt, "address", "volt.address", required=False),
        http_address=http_address,
        relay_address=relay,
        volt_public_key_pem=public_pem,
        fingerprint=fingerprint,
        ca_pem=_string(volt, "ca_pem", "volt.ca_pem", required=False),
        generation=generation,
        private_key=private_key,
        volt_public_key=public_key,
        source=source,
    )
