"""Secrets: key material and passphrases never leak; private files are 0600; wss:// checks the CA.

The leak test runs a whole session of calls — successes and failures, both
generations, an encrypted key — with every ``volt_data`` logger at DEBUG, then
scans the captured log text, the reprs and the exception texts for any line of
the private key PEMs and for the passphrase.
"""
from __future__ import annotations

import logging
import pathlib
import stat
import subprocess
import sys

import pytest

from volt_data import CallError, ConnectionLostError, PassphraseError, VoltClient
from volt_data.config import load_config
from volt_data.data.readers import read_sql_arrow_async
from volt_data.local import LocalVolt

PASSPHRASE = "correct horse battery staple 7f3a"


def _secret_lines(*pems: str) -> list[str]:
    """The base64 body lines of PEM blocks (any one of them in output would be a leak)."""
    return [line for pem in pems for line in pem.splitlines() if line and not line.startswith("-----")]


async def test_no_key_or_passphrase_in_logs_reprs_or_errors(local_volt, sample, generation, caplog, tmp_path):
    config = local_volt.client_config(name="secretive", protocol=generation, access="write", passphrase=PASSPHRASE)
    record = local_volt.register("secretive", "write")
    secrets = _secret_lines(config["credential"]["key"], record.rsa_key_pem, record.ed25519_key_pem) + [PASSPHRASE]
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="volt_data"):
        for wrong in (None, "wrong " + PASSPHRASE):
            with pytest.raises(PassphraseError) as error:
                VoltClient(config, passphrase=wrong)
            seen += [str(error.value), repr(error.value)]
        async with VoltClient(config, passphrase=PASSPHRASE) as client:
            seen += [repr(client), repr(client.config), str(client.config)]
            await client.get_resource({"resource_id": config["credential"]["client_id"]})
            for failing in (
                client.get_resource({"resource_id": "no-such-thing"}),
                read_sql_arrow_async("SELECT * FROM no_such_table", sample["database_id"], client=client),
                read_sql_arrow_async("DELETE FROM sensors", sample["database_id"], client=client),
            ):
                with pytest.raises(CallError) as error:
                    await failing
                seen += [str(error.value), repr(error.value)]
            table = await read_sql_arrow_async("SELECT * FROM sensors", sample["database_id"], client=client)
            assert table.num_rows > 0
        path = tmp_path / "config.json"
        local_volt.write_client_config(path, name="secretive", protocol=generation, access="write",
                                       passphrase=PASSPHRASE)
        seen.append(repr(load_config(str(path), passphrase=PASSPHRASE)))
        with pytest.raises(ConnectionLostError) as error:  # a failure that includes the config's address
            dead = dict(config, volt=dict(config["volt"], http_address="http://127.0.0.1:9"))
            await VoltClient(dead, passphrase=PASSPHRASE).initialise()
        seen.append(str(error.value))
    captured = caplog.text + "\n".join(seen)
    assert len(caplog.records) > 0  # DEBUG logging really ran
    leaked = [secret[:12] + "..." for secret in secrets if secret in captured]
    assert not leaked, f"secret material found in output: {leaked}"
    assert "PRIVATE KEY" not in captured


def _mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_config_files_and_keys_are_written_0600(tmp_path):
    with LocalVolt(tmp_path / "volt") as volt:
        written = volt.write_client_config(tmp_path / "client.json", protocol="v2")
        assert _mode(written) == 0o600
    for key_file in (tmp_path / "volt").rglob("*.pem"):
        if "PRIVATE KEY" in key_file.read_text():
            assert _mode(key_file) == 0o600, key_file
    output = tmp_path / "cli-client.json"
    subprocess.run([sys.executable, "-m", "volt_data.cli", "add-client", "analyst", "--data-dir",
                    str(tmp_path / "volt"), "--output", str(output)], check=True, capture_output=True)
    assert _mode(output) == 0o600


async def test_wss_refuses_a_certificate_that_does_not_chain_to_ca_pem(tmp_path):
    async with LocalVolt(tmp_path / "a", tls=True) as real, LocalVolt(tmp_path / "b", tls=True) as other:
        config = real.client_config(protocol="v2")
        assert config["volt"]["http_address"].startswith("https://")
        async with VoltClient(config) as client:  # its own CA: accepted
            assert (await client.get_resource({"resource_id": config["credential"]["client_id"]}))["resource"]
        impostor_ca = other.client_config(protocol="v2")["volt"]["ca_pem"]
        assert impostor_ca != config["volt"]["ca_pem"]
        wrong_ca = dict(config, volt=dict(config["volt"], ca_pem=impostor_ca))
        with pytest.raises(ConnectionLostError, match="certificate verify failed"):
            await VoltClient(wrong_ca).initialise()
