"""Config loading: every source, every key, and one clear error per bad field."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from volt_data import ConfigError, PassphraseError, load_config
from volt_data.protocol import crypto

SEED_README = Path(__file__).resolve().parents[2].parent / "shared" / "seed" / "volt_client_web-0.1.14-README.txt"


def pem_private(key, passphrase: bytes | None = None) -> str:
    encryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode()


@pytest.fixture(scope="module")
def keys():
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed": ed25519.Ed25519PrivateKey.generate(),
        "volt_rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "volt_ed": ed25519.Ed25519PrivateKey.generate(),
    }


def config_for(keys, generation="v2", passphrase=None, **volt):
    client_key, volt_key = (keys["ed"], keys["volt_ed"]) if generation == "v2" else (keys["rsa"], keys["volt_rsa"])
    return {
        "client_name": "Bob",
        "credential": {"client_id": "c1", "key": pem_private(client_key, passphrase), "session_id": "s1"},
        "volt": {
            "id": "did:volt:1",
            "display_name": "Bob's Volt",
            "address": "127.0.0.1:1",
            "http_address": "http://127.0.0.1:52992",
            "public_key": crypto.public_key_pem(volt_key.public_key()),
            **volt,
        },
    }


def test_dict_file_and_env_sources(keys, tmp_path, monkeypatch):
    raw = config_for(keys)
    path = tmp_path / "bob.json"
    path.write_text(json.dumps(raw))
    from_dict, from_file = load_config(raw), load_config(str(path))
    monkeypatch.setenv("VOLT_CONFIG", str(path))
    from_env_path = load_config()
    monkeypatch.setenv("VOLT_CONFIG", json.dumps(raw))
    from_env_json = load_config()
    for config in (from_dict, from_file, from_env_path, from_env_json):
        assert config.generation == "v2" and config.session_id == "s1" and config.volt_id == "did:volt:1"


def test_generation_follows_the_key_types(keys):
    assert load_config(config_for(keys, "v1")).generation == "v1"
    assert load_config(config_for(keys, "v2")).generation == "v2"
    mixed = config_for(keys, "v1")
    mixed["volt"]["public_key"] = crypto.public_key_pem(keys["volt_ed"].public_key())
    with pytest.raises(ConfigError, match="not an RSA key") as error:
        load_config(mixed)
    assert error.value.field == "volt.public_key"


@pytest.mark.parametrize(
    "address, relay, url",
    [
        ("http://127.0.0.1:52992", None, "ws://127.0.0.1:52992/api"),
        ("https://volt.example", None, "wss://volt.example/api"),
        ("http://h:1/", None, "ws://h:1//api"),
        ("http://h:1", "https://relay.example", "wss://relay.example/api"),
        ("http://h:1", {"http_address": "http://relay:9"}, "ws://relay:9/api"),
        ("http://h:1", {}, "ws://h:1/api"),
    ],
)
def test_websocket_url_rules(keys, address, relay, url):
    extra = {"relay": relay} if relay is not None else {}
    assert load_config(config_for(keys, http_address=address, **extra)).websocket_url() == url


def test_relay_without_http_address_is_fine(keys):
    raw = config_for(keys, relay="https://relay.example")
    del raw["volt"]["http_address"]
    assert load_config(raw).websocket_url() == "wss://relay.example/api"


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda c: c.pop("credential"), "credential"),
        (lambda c: c.pop("volt"), "volt"),
        (lambda c: c["credential"].pop("key"), "credential.key"),
        (lambda c: c["credential"].update(key="not a key"), "credential.key"),
        (lambda c: c["volt"].pop("id"), "volt.id"),
        (lambda c: c["volt"].pop("http_address"), "volt.http_address"),
        (lambda c: c["volt"].update(public_key="-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
         "volt.public_key"),
        (lambda c: c["volt"].update(relay=42), "volt.relay"),
        (lambda c: c["volt"].update(id=7), "volt.id"),
        (lambda c: c.update(client_name=["x"]), "client_name"),
    ],
)
def test_each_bad_field_is_named(keys, mutate, field):
    raw = config_for(keys)
    mutate(raw)
    with pytest.raises(ConfigError) as error:
        load_config(raw)
    assert error.value.field == field
    assert field.split(".")[-1] in str(error.value)


def test_missing_public_key_falls_back_to_the_ca_certificate(keys):
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca.test")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(keys["volt_rsa"].public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + timedelta(days=1))
        .sign(keys["volt_rsa"], hashes.SHA256())
    )
    raw = config_for(keys, "v1", ca_pem=cert.public_bytes(serialization.Encoding.PEM).decode())
    del raw["volt"]["public_key"]
    config = load_config(raw)
    assert config.fingerprint == crypto.fingerprint_v1(keys["volt_rsa"].public_key())


def test_encrypted_key_needs_the_right_passphrase(keys, monkeypatch):
    monkeypatch.delenv("VOLT_KEY_PASSPHRASE", raising=False)
    raw = config_for(keys, passphrase=b"correct horse")
    with pytest.raises(PassphraseError, match="encrypted"):
        load_config(raw)
    with pytest.raises(PassphraseError, match="wrong passphrase"):
        load_config(raw, passphrase="battery staple")
    assert load_config(raw, passphrase="correct horse").generation == "v2"
    monkeypatch.setenv("VOLT_KEY_PASSPHRASE", "correct horse")
    assert load_config(raw).generation == "v2"


def test_no_key_material_in_repr_or_errors(keys, monkeypatch):
    monkeypatch.delenv("VOLT_KEY_PASSPHRASE", raising=False)
    raw = config_for(keys)
    key_body = raw["credential"]["key"].splitlines()[1]
    config = load_config(raw)
    assert key_body not in repr(config) and key_body not in str(config.source)
    bad = config_for(keys, passphrase=b"pw")
    body = bad["credential"]["key"].splitlines()[1]
    with pytest.raises(PassphraseError) as error:
        load_config(bad, passphrase="nope")
    assert body not in str(error.value) and "pw" not in str(error.value)


def test_seed_config_encrypted_key_gets_a_clear_error(monkeypatch):
    """The old README's config: its key is encrypted (DES-EDE3 PBES2) and it has no http_address."""
    if not SEED_README.exists():
        pytest.skip("../shared/seed is not beside this checkout")
    monkeypatch.delenv("VOLT_KEY_PASSPHRASE", raising=False)
    text = SEED_README.read_text()
    key = json.loads('"' + re.search(r'"key": "(.*?)"', text).group(1) + '"')
    volt_key = json.loads('"' + re.search(r'"public_key":\s*"(.*?)"', text, re.S).group(1) + '"')
    raw = {"credential": {"key": key}, "volt": {"id": "9a5944eb", "public_key": volt_key}}
    with pytest.raises(PassphraseError, match="VOLT_KEY_PASSPHRASE"):
        load_config(raw)
    with pytest.raises(PassphraseError, match="wrong passphrase"):
        load_config(raw, passphrase="not the passphrase")
