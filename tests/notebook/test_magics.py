"""%volt_connect and %%volt_sql in a real InteractiveShell against a real LocalVolt."""
from __future__ import annotations

import _thread
import sqlite3
import threading

import pandas as pd
import pytest

from nb_helpers import open_calls, run


def test_connect_local_puts_client_and_sample_in_the_namespace(shell):
    result, texts, _ = run(shell, "%volt_connect local")
    assert result.error_in_exec is None
    assert any(text == "connected to the local Volt as owner (protocol v2); default database: sample" for text in texts)
    assert shell.user_ns["volt_client"].is_connected
    assert shell.user_ns["volt_sample"]["database_name"]


def test_reconnect_reuses_the_local_volt_and_closes_the_old_client(shell):
    from volt_data.notebook.magics import session

    volt, old = session.local_volt, shell.user_ns["volt_client"]
    run(shell, "%volt_connect --protocol v1 local")
    assert session.local_volt is volt
    assert shell.user_ns["volt_client"].config.generation == "v1"
    assert not old.is_connected
    result, _, _ = run(shell, "%%volt_sql n <<\nSELECT count(*) AS n FROM readings")
    assert result.error_in_exec is None and int(shell.user_ns["n"]["n"][0]) == 5000
    run(shell, "%volt_connect local")
    assert shell.user_ns["volt_client"].config.generation == "v2"


def test_destination_with_arrows_stores_a_dataframe_and_shows_a_summary(shell):
    result, texts, _ = run(shell, "%%volt_sql readings <<\nSELECT * FROM readings ORDER BY id")
    assert result.error_in_exec is None and result.result is None
    frame = shell.user_ns["readings"]
    assert isinstance(frame, pd.DataFrame) and len(frame) == 5000
    assert list(frame["id"][:3]) == [1, 2, 3]
    assert any(text.startswith("5,000 rows × 7 columns from sample in ") for text in texts)


def test_out_option_and_limit_wraps_the_statement(shell):
    result, texts, _ = run(shell, "%%volt_sql --out few --limit 3\nSELECT id FROM readings ORDER BY id DESC;")
    assert result.error_in_exec is None
    assert list(shell.user_ns["few"]["id"]) == [5000, 4999, 4998]
    assert any(text.startswith("3 rows × 1 column from sample") for text in texts)


def test_without_destination_the_cell_returns_the_frame(shell):
    result, _, _ = run(shell, "%%volt_sql --db sample --no-progress --page-size 7\nSELECT name FROM sensors ORDER BY id")
    assert list(result.result["name"]) == ["s1", "s2", "s3", "s4", "s5", "s6"]


def test_quiet_shows_nothing(shell):
    result, texts, _ = run(shell, "%%volt_sql --quiet q\nSELECT 1 AS one")
    assert result.error_in_exec is None and texts == []
    assert int(shell.user_ns["q"]["one"][0]) == 1


def test_parameters_are_bound_as_literals(shell):
    shell.user_ns.update(who="Zoë Ångström", blob=b"\x00'\xff", nothing=None, flag=True, ratio=0.5)
    result, _, _ = run(shell, "%%volt_sql\nSELECT :who AS who, {blob} AS blob, :nothing AS missing_value, :flag AS flag, "
                              ":ratio AS ratio, ':who' AS kept -- :missing is in a comment")
    row = result.result.iloc[0]
    assert row["who"] == "Zoë Ångström" and row["blob"] == b"\x00'\xff"
    assert pd.isna(row["missing_value"]) and int(row["flag"]) == 1 and float(row["ratio"]) == 0.5
    assert row["kept"] == ":who"


def test_injection_attempt_is_one_harmless_value(shell, local_volt):
    shell.user_ns["name"] = "x'; DROP TABLE people; --"
    result, _, _ = run(shell, "%%volt_sql\nSELECT count(*) AS n FROM people WHERE name = :name")
    assert int(result.result["n"][0]) == 0
    result, _, _ = run(shell, "%%volt_sql\nSELECT count(*) AS n FROM people")
    assert int(result.result["n"][0]) == 16


def test_unknown_parameter_is_a_short_error(shell):
    result, texts, _ = run(shell, "%%volt_sql\nSELECT :no_such_variable")
    assert result.error_in_exec is None and result.result is None
    assert texts == ["SQL parameter error: SQL placeholder 'no_such_variable' names no variable in the notebook"]


def test_sql_error_shows_the_servers_message_without_a_traceback(shell):
    result, texts, captured = run(shell, "%%volt_sql\nSELECT * FROM no_such_table")
    assert result.error_in_exec is None
    errors = [text for text in texts if text.startswith("Volt SQL error: ")]
    assert len(errors) == 1 and "no such table: no_such_table" in errors[0]
    assert "Traceback" not in captured.stdout + captured.stderr
    assert any(text.startswith("failed after") for text in texts)


def test_database_is_required_when_there_is_no_default(shell, monkeypatch):
    from volt_data.notebook.magics import session

    monkeypatch.setattr(session, "default_database", None)
    result, _, _ = run(shell, "%%volt_sql\nSELECT 1")
    assert "pass --db NAME" in str(result.error_in_exec)


def test_ctrl_c_cancels_on_the_server(shell):
    client = shell.user_ns["volt_client"]
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    try:
        result, texts, _ = run(
            shell, "%%volt_sql big <<\nWITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n) "
                   "SELECT v, randomblob(64) FROM n LIMIT 100000000"
        )
    finally:
        timer.cancel()
    assert "big" not in shell.user_ns
    assert any("cancelled after" in text for text in texts), texts
    assert open_calls(client) == 0
    result, _, _ = run(shell, "%%volt_sql\nSELECT 2 AS two")  # the connection is still usable
    assert int(result.result["two"][0]) == 2


def test_result_matches_sqlite_on_the_sample(shell, tmp_path):
    from volt_data.local.services.sample import build_sample_database

    path = str(tmp_path / "sample.db")
    build_sample_database(path)
    expected = sqlite3.connect(path).execute("SELECT avg(temperature) FROM readings WHERE sensor_id = 3").fetchone()[0]
    shell.user_ns["sensor"] = 3
    result, _, _ = run(shell, "%%volt_sql\nSELECT avg(temperature) AS t FROM readings WHERE sensor_id = :sensor")
    assert result.result["t"][0] == pytest.approx(expected)
