"""to_volt against a real local Volt: round trips through read_sql, if_exists, types on disk."""
from __future__ import annotations

import datetime
import math
import sqlite3
import uuid

import pandas as pd
import pyarrow as pa
import pytest

from volt_data import SyncVoltClient
from volt_data.data import TableExistsError, read_sql, read_sql_arrow, to_volt
from volt_data.data.writer import real_literal


@pytest.fixture
def volt(owner_config):
    with SyncVoltClient(owner_config) as client:
        yield client


@pytest.fixture
def scratch(volt, local_volt):
    """A new empty database: (id, sqlite3 connection to its file)."""
    created = volt.create_database({"name": f"writer-{uuid.uuid4().hex[:8]}"})
    database_id = created["resource"]["id"]
    connection = sqlite3.connect(str(local_volt.services.sqlite.path_for(database_id)))
    yield database_id, connection
    connection.close()


def same_tables(left: pa.Table, right: pa.Table) -> bool:
    """Equal names, types and values (NaN == NaN, sign of zero checked)."""
    if left.schema.names != right.schema.names or left.schema.types != right.schema.types:
        return False
    for a_row, b_row in zip(left.to_pylist(), right.to_pylist(), strict=True):
        for a, b in zip(a_row.values(), b_row.values()):
            if isinstance(a, float) and isinstance(b, float):
                if not (a == b or (math.isnan(a) and math.isnan(b))) or math.copysign(1, a) != math.copysign(1, b):
                    return False
            elif a != b:
                return False
    return True


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM value_types WHERE label != 'text in integer column' ORDER BY rowid",  # typed columns
        "SELECT * FROM value_types ORDER BY rowid",  # every column promoted to text
        "SELECT * FROM people ORDER BY id",  # unicode, NULLs, blobs
        "SELECT * FROM readings ORDER BY id",  # 5000 rows: several BulkUpdate calls
    ],
)
def test_round_trip_through_read_sql(volt, scratch, sql):
    database_id, _ = scratch
    original = read_sql(sql, "sample", client=volt, progress=False)
    written = to_volt(original, "copy", database_id, client=volt, progress=False)
    assert written == len(original)
    back = read_sql_arrow("SELECT * FROM copy ORDER BY rowid", database_id, client=volt, progress=False)
    first = read_sql_arrow(sql, "sample", client=volt, progress=False)
    assert same_tables(first, back)


def test_if_exists_fail_replace_append(volt, scratch):
    database_id, connection = scratch
    first = pd.DataFrame({"n": [1, 2, 3]})
    assert to_volt(first, "t", database_id, client=volt, progress=False) == 3
    with pytest.raises(TableExistsError):
        to_volt(first, "t", database_id, client=volt, progress=False)
    assert to_volt(pd.DataFrame({"n": [10, 20]}), "t", database_id, client=volt, if_exists="append", progress=False) == 2
    assert [row[0] for row in connection.execute("SELECT n FROM t ORDER BY rowid")] == [1, 2, 3, 10, 20]
    replacement = pd.DataFrame({"word": ["only"]})
    assert to_volt(replacement, "t", database_id, client=volt, if_exists="replace", progress=False) == 1
    assert connection.execute("SELECT * FROM t").fetchall() == [("only",)]
    assert [row[1] for row in connection.execute("PRAGMA table_info(t)")] == ["word"]
    # append to a missing table creates it
    assert to_volt(first, "fresh", database_id, client=volt, if_exists="append", progress=False) == 3


def test_declared_types_and_stored_values(volt, scratch):
    database_id, connection = scratch
    when = datetime.datetime(2024, 11, 25, 13, 30, 5, tzinfo=datetime.timezone.utc)
    frame = pd.DataFrame(
        {
            "i": pd.array([-(2**63), 2**63 - 1, None], dtype="Int64"),
            "f": [0.1, float("nan"), -math.inf],
            "s": ["it's", "", None],
            "b": [b"\x00\xff", b"", None],
            "flag": [True, False, True],
            "at": [when, when, when],
            "nul": ["a\x00b", "x", "y"],
        }
    )
    to_volt(frame, "typed", database_id, client=volt, progress=False)
    declared = {row[1]: row[2] for row in connection.execute("PRAGMA table_info(typed)")}
    assert declared == {"i": "INTEGER", "f": "REAL", "s": "TEXT", "b": "BLOB", "flag": "INTEGER", "at": "TEXT", "nul": "TEXT"}
    rows = connection.execute("SELECT * FROM typed ORDER BY rowid").fetchall()
    assert [row[0] for row in rows] == [-(2**63), 2**63 - 1, None]
    assert rows[0][1] == 0.1 and rows[1][1] is None and rows[2][1] == -math.inf  # NaN is stored as NULL
    assert [row[2] for row in rows] == ["it's", "", None]
    assert [row[3] for row in rows] == [b"\x00\xff", b"", None]
    assert [row[4] for row in rows] == [1, 0, 1]
    assert rows[0][5] == when.isoformat()
    assert rows[0][6] == "a\x00b"


def test_real_literals_are_exact_in_sqlite():
    connection = sqlite3.connect(":memory:")
    values = [0.1, 1 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -2.5, 21.0, 9007199254740993.0]
    values += [math.ldexp(0.6172839506172839, exponent) for exponent in range(-1070, 1020, 37)]
    for value in values:
        assert connection.execute(f"SELECT {real_literal(value)}").fetchone()[0] == value


def test_import_csv_method(volt, scratch):
    database_id, connection = scratch
    frame = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b,c", 'quote "q"'], "x": [0.5, 1e-7, 3.0]})
    assert to_volt(frame, "csv", database_id, client=volt, method="import_csv", progress=False) == 3
    assert connection.execute("SELECT * FROM csv ORDER BY id").fetchall() == list(frame.itertuples(index=False, name=None))
    with pytest.raises(ValueError, match="bytes"):
        to_volt(pd.DataFrame({"b": [b"x"]}), "blobs", database_id, client=volt, method="import_csv", progress=False)
