"""``volt-data sql`` against a real local Volt: every output format, checked with sqlite3."""
from __future__ import annotations

import json
import sqlite3

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from volt_data.cli import main

SQL = "SELECT id, name, calibration FROM sensors ORDER BY id"


def run_cli(argv: list[str]) -> int:
    """``volt-data`` as the console script runs it."""
    return main(argv)


@pytest.fixture
def config_file(local_volt, owner_config, tmp_path):
    path = tmp_path / "volt.json"
    path.write_text(json.dumps(owner_config))
    return str(path)


@pytest.fixture
def expected(local_volt, sample):
    connection = sqlite3.connect(str(local_volt.services.sqlite.path_for(sample["database_id"])))
    rows = connection.execute(SQL).fetchall()
    connection.close()
    return rows


def test_table_format_prints_rows(config_file, expected, capsys):
    assert run_cli(["sql", SQL, "--db", "sample", "--config", config_file, "--no-progress"]) == 0
    out = capsys.readouterr().out
    for _id, name, _blob in expected:
        assert name in out


@pytest.mark.parametrize("output_format", ["parquet", "arrow", "csv"])
def test_file_formats_hold_the_rows(config_file, expected, tmp_path, output_format):
    target = tmp_path / f"out.{output_format}"
    argv = ["sql", SQL, "--db", "sample", "--config", config_file, "--format", output_format, "-o", str(target)]
    assert run_cli(argv + ["--page-size", "4", "--no-progress"]) == 0
    if output_format == "parquet":
        table = pq.read_table(target)
    elif output_format == "arrow":
        with pa.ipc.open_stream(target.read_bytes()) as reader:
            table = reader.read_all()
    else:
        table = pacsv.read_csv(target)
    assert table.column("id").to_pylist() == [row[0] for row in expected]
    assert table.column("name").to_pylist() == [row[1] for row in expected]
    if output_format != "csv":
        assert table.column("calibration").to_pylist() == [row[2] for row in expected]


def test_parquet_needs_an_output_file(config_file, capsys):
    assert run_cli(["sql", SQL, "--db", "sample", "--config", config_file, "--format", "parquet"]) == 2
    assert "-o FILE" in capsys.readouterr().err
