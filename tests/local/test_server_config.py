"""Client configs, identity state, TLS with the Volt's own CA, /discover and the CLI."""
from __future__ import annotations

import json
import os
import ssl
import stat
import subprocess
import sys
import urllib.request

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from websockets.asyncio.client import connect

from tests.local.server_harness import GET_RESOURCE, Wire, session_for, ws_url
from volt_data.config import load_config
from volt_data.local import LocalVolt
from volt_data.local.state import VoltState
from volt_data.protocol import crypto


@pytest.fixture(scope="module")
def volt():
    with LocalVolt() as running:
        yield running


@pytest.mark.parametrize("protocol, key_type", [("v1", rsa.RSAPrivateKey), ("v2", ed25519.Ed25519PrivateKey)])
def test_client_config_shape(volt, protocol, key_type):
    config = volt.client_config("analyst", protocol=protocol, access="read")
    record = volt.state.get("analyst")
    assert config["client_name"] == "analyst"
    credential, about = config["credential"], config["volt"]
    assert credential["client_id"] == record.id
    assert credential["identity_did"] == f"did:volt:identity:{record.id}"
    assert ("session_id" in credential) == (protocol == "v2")
    key = serialization.load_pem_private_key(credential["key"].encode(), password=None)
    assert isinstance(key, key_type)
    assert about["id"] == volt.state.volt_id and about["id"].startswith("did:volt:")
    assert about["http_address"] == volt.http_address == f"http://127.0.0.1:{volt.port}"
    assert about["address"] == f"127.0.0.1:{volt.port}"
    volt_key = serialization.load_pem_public_key(about["public_key"].encode())
    if protocol == "v1":
        assert isinstance(volt_key, rsa.RSAPublicKey)
        assert about["fingerprint"] == crypto.fingerprint_v1(about["public_key"])
    else:
        assert isinstance(volt_key, ed25519.Ed25519PublicKey)
        assert about["fingerprint"] == crypto.fingerprint_v2(volt_key)
    assert about["ca_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert load_config(config).generation == protocol
    # its home folder exists, with the identity's id
    assert volt.services.store.get(record.id) is not None


def test_passphrase_encrypts_the_key_and_the_file_is_private(volt, tmp_path):
    path = volt.write_client_config(tmp_path / "c.json", name="secret", protocol="v2", passphrase="s3cret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = json.loads(path.read_text())
    assert config["credential"]["key"].startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(config["credential"]["key"].encode(), password=None)
    key = serialization.load_pem_private_key(config["credential"]["key"].encode(), password=b"s3cret")
    assert key.public_key() == volt.state.get("secret").ed25519_key.public_key()
    assert load_config(config, passphrase="s3cret").session_id == config["credential"]["session_id"]


def test_identities_persist_and_names_are_reused(tmp_path):
    state = VoltState(tmp_path)
    first = state.register("ana", "write")
    assert state.register("ana", "write") is first
    with pytest.raises(ValueError, match="already exists with access 'write'"):
        state.register("ana", "read")
    again = VoltState(tmp_path)
    assert again.volt_id == state.volt_id
    assert again.get("ana").id == first.id
    assert again.by_fingerprint(first.fingerprint).name == "ana"
    assert again.by_session(first.session_id).name == "ana"
    for private in ["identities.json", "keys/volt-rsa.pem", "keys/volt-ed25519.pem", "tls/ca-key.pem"]:
        assert stat.S_IMODE((tmp_path / private).stat().st_mode) == 0o600, private


def test_discover_answers_with_the_volt_config(volt):
    with urllib.request.urlopen(f"{volt.http_address}/discover", timeout=5) as response:
        assert response.headers["Content-Type"] == "application/json"
        about = json.loads(response.read())
    assert about["id"] == volt.state.volt_id and about["http_address"] == volt.http_address
    assert about["public_key"] == volt.state.public_key_pem("v2")


async def test_wss_with_the_volt_ca_works_and_is_refused_without_it():
    async with LocalVolt(tls=True) as volt:
        config = volt.client_config(protocol="v2")
        assert config["volt"]["http_address"].startswith("https://")
        url = ws_url(config)
        assert url.startswith("wss://")
        trusting = ssl.create_default_context(cadata=config["volt"]["ca_pem"])
        wire = Wire(await connect(url, ssl=trusting))
        try:
            home = config["credential"]["client_id"]
            outcome = await wire.call(session_for(config), GET_RESOURCE, {"resource_id": home})
            assert outcome.responses[-1]["resource"]["id"] == home
        finally:
            await wire.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(url, ssl=ssl.create_default_context())


def test_cli_serve_prints_config_and_a_client_can_use_it(tmp_path):
    import volt_data

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-m", "volt_data.cli", "serve", "--data-dir", str(tmp_path / "volt"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        line = ""
        while not line.startswith("config: "):
            line = process.stdout.readline()
            assert line, process.stderr.read()
        path = line.split(": ", 1)[1].strip()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with volt_data.connect(path) as client:
            home = client.config.client_id
            assert client.get_resource({"resource_id": home})["resource"]["id"] == home
    finally:
        process.terminate()
        assert process.wait(10) == 0


def test_cli_init_and_add_client(tmp_path):
    from volt_data.cli import main

    data_dir = str(tmp_path / "volt")
    assert main(["init", "--data-dir", data_dir]) == 0
    out = tmp_path / "reader.json"
    os.environ["TEST_VOLT_PASS"] = "pw"
    try:
        assert main(["add-client", "reader", "--data-dir", data_dir, "--access", "read", "--protocol", "v1",
                     "--passphrase-env", "TEST_VOLT_PASS", "-o", str(out)]) == 0
    finally:
        del os.environ["TEST_VOLT_PASS"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    config = json.loads(out.read_text())
    assert "ENCRYPTED" in config["credential"]["key"]
    assert load_config(config, passphrase="pw").generation == "v1"
    assert VoltState(data_dir).get("reader").access == "read"
