"""The published Volt clients, unmodified, against our local Volt (issue 3, "Done when" 3).

``volt_client_web`` 0.1.14 (PyPI, protocol v1) and ``@tdxvolt/volt-client-web``
0.20.34 (npm, pure-JS build, protocol v2) each run in their own environment
(``envs.py``) as a subprocess against one in-process ``LocalVolt``. Each does
what a user does — a unary call, a status error, ``SqlExecuteJSON``, a wire
subscription stopped with ``{"stop": true}``, a publication ended with
``end()`` — and the tests compare what the client saw with the truth: rows read
from the database file with ``sqlite3``, and chunks received by an independent
subscriber built on our protocol core.

Skipped, with the installer's reason, where pip or npm cannot install.
"""
from __future__ import annotations

import base64
import json
import math
import os
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest

import envs
from core_subscriber import CoreSubscriber

# The first test of each client may build its environment (about 25 s cold; envs.INSTALL_TIMEOUT
# at worst), which must end in a skip rather than in the suite-wide 120 s pytest-timeout.
pytestmark = [pytest.mark.published_clients, pytest.mark.timeout(900)]

HERE = Path(__file__).parent
CLIENT_RUN_TIMEOUT = 120.0
STATEMENTS = {
    "people": "SELECT * FROM people ORDER BY id",
    "sensors": "SELECT * FROM sensors ORDER BY id",
    "readings": "SELECT * FROM readings ORDER BY id LIMIT 300",
    "value_types": "SELECT * FROM value_types ORDER BY rowid",
}
# The JS client decodes cells by the header's column type (protocol reference §5.1),
# so storage classes that differ from the declared type cannot round-trip there.
JS_EXACT_TABLES = ("people", "sensors", "readings")


# --------------------------------------------------------------------------- environments and Volt


@pytest.fixture(scope="module")
def python_client() -> Path:
    try:
        return envs.python_client_env()
    except envs.ClientEnvUnavailable as exc:
        pytest.skip(f"volt_client_web 0.1.14 could not be installed: {exc}")


@pytest.fixture(scope="module")
def js_client() -> Path:
    try:
        return envs.js_client_env()
    except envs.ClientEnvUnavailable as exc:
        pytest.skip(f"@tdxvolt/volt-client-web 0.20.34 could not be installed: {exc}")


@pytest.fixture(scope="module")
def volt(tmp_path_factory):
    local_volt = getattr(pytest.importorskip("volt_data.local"), "LocalVolt", None)
    if local_volt is None:
        pytest.skip("volt_data.local.LocalVolt has not landed yet")
    with local_volt(data_dir=tmp_path_factory.mktemp("volt")) as running:
        yield running


@pytest.fixture(scope="module")
def sample(volt) -> dict:
    return volt.load_sample()


def _database_file(volt, database_id: str) -> Path:
    """The SQLite file behind a Volt database: ``<data_dir>/databases/<id>.sqlite``."""
    data_dir = Path(volt.data_dir)
    candidates = [data_dir / "databases" / f"{database_id}.sqlite", *data_dir.rglob(f"{database_id}*")]
    for candidate in candidates:
        if candidate.is_file() and not candidate.name.endswith(("-wal", "-shm")):
            return candidate
    raise AssertionError(f"no database file for {database_id} under {data_dir}")


def _truth(volt, database_id: str) -> dict[str, list[dict]]:
    """Every statement's rows read straight from the file, in the clients' JSON shape (blobs as base64)."""
    uri = _database_file(volt, database_id).resolve().as_uri() + "?mode=ro"
    connection = sqlite3.connect(uri, uri=True)
    try:
        tables = {}
        for name, statement in STATEMENTS.items():
            cursor = connection.execute(statement)
            columns = [column[0] for column in cursor.description]
            tables[name] = [
                {column: base64.b64encode(value).decode() if isinstance(value, bytes) else value
                 for column, value in zip(columns, row)}
                for row in cursor
            ]
        return tables
    finally:
        connection.close()


def _run_client(command: list[str], tmp_path: Path, files: dict[str, dict], env: dict | None = None) -> dict:
    """Write the JSON inputs, run one client script, return its JSON result (or fail with its output)."""
    arguments = []
    for name, content in files.items():
        path = tmp_path / name
        path.write_text(json.dumps(content))
        arguments.append(str(path))
    try:
        done = subprocess.run(
            [*command, *arguments], capture_output=True, text=True, timeout=CLIENT_RUN_TIMEOUT,
            stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{command[-1]} did not finish in {CLIENT_RUN_TIMEOUT:.0f} s: {exc.stderr!r}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, (
        f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    result = json.loads(lines[-1])
    result["_stderr"] = done.stderr[-4000:]
    return result


def _facts(sample: dict, client: str) -> dict:
    return {
        "database_id": sample["database_id"],
        "wire_id": sample["wire_id"],
        "publish_wire_id": sample["wire_id"],
        "statements": STATEMENTS,
        "readme_statement": "SELECT * FROM sensors",
        "missing_id": f"no-such-resource-{uuid.uuid4()}",
        "publish_chunks": [f"published by {client} #{index} {uuid.uuid4()}" for index in range(2)],
    }


def _run_with_witness(volt, sample: dict, facts: dict, command, tmp_path, files, env=None) -> dict:
    """Run a client while a protocol-core subscriber watches the wire it publishes to."""
    witness_config = volt.client_config(name="witness", protocol="v2", access="read")
    with CoreSubscriber(witness_config, facts["publish_wire_id"]) as witness:
        result = _run_client(command, tmp_path, files, env)
        result["witness"] = {
            "received_all": witness.wait_for(facts["publish_chunks"]),
            "chunks": [chunk.decode("utf-8", "replace") for chunk in witness.chunks
                       if chunk.decode("utf-8", "replace") in facts["publish_chunks"]],
            "failure": repr(witness.failure) if witness.failure else None,
        }
    return result


@pytest.fixture(scope="module")
def python_result(python_client, volt, sample, tmp_path_factory) -> dict:
    config = volt.client_config(name="python-0.1.14", protocol="v1", access="owner")
    facts = _facts(sample, "python")
    result = _run_with_witness(
        volt, sample, facts, [str(python_client), str(HERE / "run_python_client.py")],
        tmp_path_factory.mktemp("python-client"), {"config.json": config, "facts.json": facts},
    )
    return {"result": result, "facts": facts, "config": config}


@pytest.fixture(scope="module")
def js_result(js_client, volt, sample, tmp_path_factory) -> dict:
    config = volt.client_config(name="js-0.20.34", protocol="v2", access="owner")
    facts = _facts(sample, "js")
    result = _run_with_witness(
        volt, sample, facts, ["node", str(HERE / "run_js_client.mjs")],
        tmp_path_factory.mktemp("js-client"), {"config.json": config, "facts.json": facts},
        env={"VOLT_JS_ENV": str(js_client)},
    )
    return {"result": result, "facts": facts, "config": config}


@pytest.fixture(params=["python", "js"])
def run(request) -> dict:
    return request.getfixturevalue(f"{request.param}_result")


def _step(run: dict, name: str) -> dict:
    step = run["result"].get(name) or run["result"].get("initialise") or {}
    assert step.get("ok"), (
        f"{name} failed: {json.dumps(step, indent=1)}\nclient stderr:\n{run['result']['_stderr']}"
    )
    return step


# --------------------------------------------------------------------------- the five steps, both clients


def test_unary_get_resource_of_home_folder(run):
    step = _step(run, "unary")
    assert step["response"]["resource"]["id"] == run["config"]["credential"]["client_id"]


def test_status_error_reaches_the_caller(run):
    step = _step(run, "status_error")
    assert step["raised"], f"GetResource of a missing id resolved: {step}"
    assert step["error"] == "notFound"  # both clients surface status.message as the error text
    if "description" in step:  # the JS client also keeps the status description and code
        assert run["facts"]["missing_id"] in step["description"]
        assert step["code"] == 5


def test_sql_execute_json_matches_sqlite(run, volt, sample):
    step = _step(run, "sql")
    truth = _truth(volt, sample["database_id"])
    exact = STATEMENTS if run["result"]["client"].startswith("volt_client_web") else JS_EXACT_TABLES
    for table in exact:
        rows = step["tables"][table]
        if table in JS_EXACT_TABLES and not run["result"]["client"].startswith("volt_client_web"):
            # JS drops the key of a NULL TEXT/BLOB cell (undefined) and turns NULL numbers into NaN -> null.
            rows = [{column: row.get(column) for column in truth[table][0]} for row in rows]
        assert len(rows) == len(truth[table]), table
        for got, expected in zip(rows, truth[table]):
            assert _same_row(got, expected), f"{table}: client saw {got}, sqlite3 has {expected}"


def _same_row(got: dict, expected: dict) -> bool:
    if got.keys() != expected.keys():
        return False
    for column, want in expected.items():
        have = got[column]
        if isinstance(want, float) and isinstance(have, (int, float)):
            if not (have == want and math.copysign(1, have) == math.copysign(1, want)):
                return False
        elif have != want or type(have) is not type(want):
            return False
    return True


def test_js_client_rounds_int64_as_documented(js_result):
    """The server sends 2**53 + 1 exactly; the JS client's parseInt rounds it (reference §5.1)."""
    rows = _step(js_result, "sql")["tables"]["value_types"]
    beyond = next(row for row in rows if row["label"] == "2**53 + 1")
    assert beyond["int_value"] == 9007199254740992


def test_subscribe_wire_then_stop(run):
    step = _step(run, "subscribe")
    assert len(step["chunks"]) >= 2
    readings = [json.loads(chunk) for chunk in step["chunks"]]
    assert all({"sensor", "ts", "temperature"} <= reading.keys() for reading in readings)
    assert step["ended"], "the call did not end after {'stop': true}"


def test_unknown_method_fails_the_call_with_a_reason(run):
    step = _step(run, "unknown_method")
    assert step["raised"], f"GetSettings (not in the schema) answered: {step}"
    assert "GetSettings" in step["error"] or "unimplemented" in step["error"].lower(), step


def test_publish_wire_reaches_an_independent_subscriber(run):
    result = run["result"]
    assert result["witness"]["failure"] is None
    assert result["witness"]["received_all"], (
        f"witness got {result['witness']['chunks']}; client said {json.dumps(result.get('publish'))}"
    )
    assert result["witness"]["chunks"] == run["facts"]["publish_chunks"]  # in order, each once
    _step(run, "publish")


# --------------------------------------------------------------------------- the 0.1.14 README, as printed


@pytest.fixture(scope="module")
def readme_result(python_client, volt, sample, tmp_path_factory) -> dict:
    config = volt.client_config(name="readme-bob", protocol="v1", access="owner")
    encrypted = volt.client_config(
        name="readme-bob", protocol="v1", access="owner", passphrase="bob's secret"
    )
    return _run_client(
        [str(python_client), str(HERE / "run_seed_readme.py")], tmp_path_factory.mktemp("readme"),
        {"config.json": config, "encrypted.json": encrypted, "facts.json": _facts(sample, "readme")},
    )


def test_readme_config_problems_are_the_documented_ones(readme_result):
    """An encrypted key and a missing http_address stop 0.1.14 before any frame is sent (§1)."""
    encrypted = readme_result["encrypted_key"]
    assert encrypted["error_type"] == "TypeError"
    assert "Password was not given but private key is encrypted" in encrypted["error"]
    no_address = readme_result["no_http_address"]
    assert (no_address["error_type"], no_address["error"]) == ("KeyError", "'http_address'")


def test_readme_camel_case_names_do_not_exist(readme_result):
    for name in ("getResource", "sqlExecute", "subscribeWire"):
        step = readme_result["readme_calls"][name]
        assert step["error_type"] == "AttributeError" and name in step["error"], step


def test_readme_examples_work_with_the_real_method_names(readme_result):
    """With PascalCase names, the README's own requests (``resourceId``, the flat
    Execute request) and handlers work against the local Volt."""
    steps = readme_result["pascal_case"]
    assert steps["GetResource"]["ok"], steps["GetResource"]
    assert steps["GetResource"]["resource"]["name"]
    assert steps["SqlExecute"]["ok"] and steps["SqlExecute"]["ended"], steps["SqlExecute"]
    assert steps["SqlExecute"]["responses"] == 1 + 6  # header, then one row per sensor
    assert "header" in steps["SqlExecute"]["first_responses"][0]
    assert steps["SubscribeWire"]["ok"] and steps["SubscribeWire"]["chunks"] >= 2, steps["SubscribeWire"]
