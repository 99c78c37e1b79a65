"""read_sql / read_sql_arrow / iter_batches against a real local Volt, checked with sqlite3.

Every test runs once per protocol generation. Expected values come from
Python's sqlite3 reading the very database file the Volt serves.
"""
from __future__ import annotations

import _thread
import math
import sqlite3
import time
import uuid

import pandas as pd
import pyarrow as pa
import pytest

from volt_data import CallCancelledError, CallError, SyncVoltClient
from volt_data.data import (
    UnknownDatabaseError,
    aiter_batches,
    iter_batches,
    read_sql,
    read_sql_arrow,
    read_sql_async,
    set_default_client,
)
from volt_data.data.default import default_client


@pytest.fixture
def volt(owner_config):
    """A blocking client of the Volt's owner for the current generation."""
    with SyncVoltClient(owner_config) as client:
        yield client


@pytest.fixture
def sample_file(local_volt, sample):
    """A sqlite3 connection to the sample database's own file (read-only)."""
    path = local_volt.services.sqlite.path_for(sample["database_id"])
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    yield connection
    connection.close()


def sqlite_rows(connection: sqlite3.Connection, sql: str) -> list[tuple]:
    return [tuple(row) for row in connection.execute(sql).fetchall()]


def arrow_rows(table: pa.Table) -> list[tuple]:
    return [tuple(row.values()) for row in table.to_pylist()]


def same_values(left: list[tuple], right: list[tuple]) -> bool:
    """Equal row by row, with NaN equal to NaN and the sign of zero checked."""
    if len(left) != len(right):
        return False
    for a_row, b_row in zip(left, right):
        for a, b in zip(a_row, b_row, strict=True):
            if isinstance(a, float) and isinstance(b, float):
                if not (a == b or (math.isnan(a) and math.isnan(b))) or math.copysign(1, a) != math.copysign(1, b):
                    return False
            elif a != b or type(a) is not type(b):
                return False
    return True


TYPED_ROWS = "SELECT * FROM value_types WHERE label != 'text in integer column' ORDER BY rowid"


def test_every_type_matches_sqlite(volt, sample, sample_file):
    table = read_sql_arrow(TYPED_ROWS, sample["database_id"], client=volt, progress=False)
    expected = sqlite_rows(sample_file, TYPED_ROWS)
    assert same_values(arrow_rows(table), expected)
    assert table.schema.types == [pa.large_string(), pa.int64(), pa.float64(), pa.large_string(), pa.large_binary()]
    labels = table.column("label").to_pylist()
    ints = dict(zip(labels, table.column("int_value").to_pylist()))
    assert ints["int64 min"] == -(2**63) and ints["int64 max"] == 2**63 - 1 and ints["2**53 + 1"] == 2**53 + 1
    reals = dict(zip(labels, table.column("real_value").to_pylist()))
    assert reals["infinity"] == math.inf and reals["minus infinity"] == -math.inf
    # NULL in every column of the "all null" row
    assert all(value is None for value in table.slice(labels.index("all null"), 1).to_pylist()[0].values() if value != "all null")


def test_dataframe_types_and_attrs(volt, sample, sample_file):
    frame = read_sql(TYPED_ROWS, "sample", client=volt, progress=False)
    assert all(isinstance(dtype, pd.ArrowDtype) for dtype in frame.dtypes)
    assert frame["int_value"].dtype == pd.ArrowDtype(pa.int64())
    assert frame["int_value"].isna().tolist() == [row[1] is None for row in sqlite_rows(sample_file, TYPED_ROWS)]
    assert frame.attrs["statement"] == TYPED_ROWS
    assert frame.attrs["rows"] == len(frame) == 13
    assert frame.attrs["elapsed_seconds"] >= 0
    assert frame.attrs["conversions"] == {}
    nullable = read_sql(TYPED_ROWS, "sample", client=volt, progress=False, dtype_backend="numpy_nullable")
    assert nullable["int_value"].dtype == pd.Int64Dtype()
    assert nullable["int_value"].dropna().tolist() == frame["int_value"].dropna().tolist()


def test_integer_column_holding_text_is_promoted_and_recorded(volt, sample, sample_file):
    sql = "SELECT label, int_value FROM value_types ORDER BY rowid"
    frame = read_sql(sql, "sample", client=volt, progress=False)
    assert frame["int_value"].dtype == pd.ArrowDtype(pa.large_string())
    assert "int_value" in frame.attrs["conversions"]
    expected = [None if value is None else str(value) for _label, value in sqlite_rows(sample_file, sql)]
    assert [None if pd.isna(value) else value for value in frame["int_value"]] == expected
    table = read_sql_arrow(sql, "sample", client=volt, progress=False)
    assert b"volt_data" in table.schema.metadata


def test_empty_result_keeps_columns(volt, sample_file):
    sql = "SELECT * FROM readings WHERE id < 0"
    frame = read_sql(sql, "sample", client=volt, progress=False)
    names = [column[0] for column in sample_file.execute(sql).description]
    assert list(frame.columns) == names and len(frame) == 0
    assert frame.attrs["rows"] == 0
    assert all(isinstance(dtype, pd.ArrowDtype) for dtype in frame.dtypes)
    reader = iter_batches(sql, "sample", client=volt, progress=False)
    assert reader.schema.names == names
    assert reader.read_all().num_rows == 0


@pytest.mark.parametrize("page_size", [333, 1000, 10_000])
def test_paging_returns_every_row_in_order(volt, sample_file, page_size):
    sql = "SELECT * FROM readings ORDER BY id"
    table = read_sql_arrow(sql, "sample", client=volt, page_size=page_size, progress=False)
    assert same_values(arrow_rows(table), sqlite_rows(sample_file, sql))


def test_iter_batches_streams_in_bounded_batches(volt, sample_file):
    sql = "SELECT id, note FROM readings ORDER BY id"
    with iter_batches(sql, "sample", client=volt, page_size=700, batch_rows=512, progress=False) as reader:
        sizes = []
        rows = []
        for batch in reader:
            sizes.append(batch.num_rows)
            rows.extend(arrow_rows(pa.Table.from_batches([batch])))
    assert max(sizes) <= 512 and sum(sizes) == 5000
    assert rows == sqlite_rows(sample_file, sql)


def test_cancel_mid_stream_leaves_the_connection_usable(volt, sample_file):
    reader = iter_batches("SELECT * FROM readings", "sample", client=volt, page_size=250, batch_rows=200, progress=False)
    assert reader.read_next_batch().num_rows == 200
    reader.cancel()
    with pytest.raises(CallCancelledError):
        while True:
            reader.read_next_batch()
    assert volt.aclient._connection.open_calls == 0
    again = read_sql_arrow("SELECT count(*) AS n FROM readings", "sample", client=volt, progress=False)
    assert again.column("n").to_pylist() == [sample_file.execute("SELECT count(*) FROM readings").fetchone()[0]]


def test_ctrl_c_cancels_the_query_and_raises_call_cancelled(volt):
    interrupted = []

    def hook(rows: int, elapsed: float) -> None:
        if not interrupted:
            interrupted.append(rows)
            _thread.interrupt_main()  # what Ctrl-C does to the waiting main thread
            time.sleep(0.3)  # hold the loop so the query cannot finish first

    with pytest.raises(CallCancelledError):
        read_sql("SELECT * FROM readings", "sample", client=volt, page_size=100, progress=hook)
    assert interrupted
    assert len(read_sql("SELECT * FROM sensors", "sample", client=volt, progress=False)) == 6


def test_sql_error_carries_sqlites_message(volt, sample_file):
    sql = "SELECT * FROM no_such_table"
    with pytest.raises(sqlite3.OperationalError) as expected:
        sample_file.execute(sql)
    with pytest.raises(CallError) as raised:
        read_sql(sql, "sample", client=volt, progress=False)
    assert str(expected.value) in str(raised.value)
    assert raised.value.description == str(expected.value)
    assert len(read_sql("SELECT 1 AS one", "sample", client=volt, progress=False)) == 1


def test_database_by_name_and_by_id(volt, sample):
    sql = "SELECT * FROM sensors ORDER BY id"
    by_name = read_sql_arrow(sql, sample["database_name"], client=volt, progress=False)
    by_id = read_sql_arrow(sql, sample["database_id"], client=volt, progress=False)
    assert by_name.equals(by_id) and by_name.num_rows == 6
    with pytest.raises(UnknownDatabaseError) as unknown:
        read_sql(sql, "sampel", client=volt, progress=False)
    assert "sample" in unknown.value.suggestions and "sample" in str(unknown.value)


def test_statement_without_rows_reports_affected_rows(volt):
    created = volt.create_database({"name": f"readers-{uuid.uuid4().hex[:8]}"})
    database_id = created["resource"]["id"]
    read_sql("CREATE TABLE t (x INTEGER)", database_id, client=volt, progress=False)
    frame = read_sql("INSERT INTO t VALUES (1), (2), (3)", database_id, client=volt, progress=False)
    assert frame.empty and frame.attrs["affected_rows"] == 3
    assert read_sql("SELECT sum(x) AS s FROM t", database_id, client=volt, progress=False)["s"].tolist() == [6]


def test_progress_hook_sees_every_row(volt):
    seen = []
    read_sql("SELECT * FROM readings", "sample", client=volt, progress=lambda rows, elapsed: seen.append(rows))
    assert seen and seen[-1] == 5000 and seen == sorted(seen)


def test_default_client_is_used_without_client_argument(volt):
    set_default_client(volt)
    try:
        assert default_client() is volt
        assert len(read_sql("SELECT * FROM sensors", "sample", progress=False)) == 6
    finally:
        set_default_client(None)


def test_config_as_client(owner_config):
    assert read_sql_arrow("SELECT 42 AS answer", "sample", client=owner_config, progress=False).to_pylist() == [
        {"answer": 42}
    ]


async def test_async_readers_on_an_async_client(client, volt, sample_file):
    sql = "SELECT * FROM readings ORDER BY id"
    frame = await read_sql_async(sql, "sample", client=client, page_size=900, progress=False)
    assert len(frame) == 5000 and frame.attrs["rows"] == 5000
    rows = []
    async for batch in aiter_batches(sql, "sample", client=client, batch_rows=1000, progress=False):
        rows.extend(arrow_rows(pa.Table.from_batches([batch])))
    assert same_values(rows, sqlite_rows(sample_file, sql))
    # leaving early cancels the call; the client keeps working
    async for batch in aiter_batches(sql, "sample", client=client, page_size=100, batch_rows=100, progress=False):
        break
    assert (await read_sql_async("SELECT 1 AS one", "sample", client=client, progress=False))["one"].tolist() == [1]
    # a SyncVoltClient works from async code too (its work hops to its own loop)
    assert len(await read_sql_async("SELECT * FROM sensors", "sample", client=volt, progress=False)) == 6


def test_progress_choices():
    import io

    from volt_data.data.progress import CallbackProgress, TerminalProgress, make_progress

    assert make_progress(False) is None
    assert isinstance(make_progress(lambda rows, elapsed: None), CallbackProgress)
    assert isinstance(make_progress(True), TerminalProgress)
    stream = io.StringIO()
    line = TerminalProgress("Execute", stream=stream)
    line.update(1234)
    line.close()
    text = stream.getvalue()
    assert text.startswith("\rExecute: 1,234 rows") and "rows/s" in text and text.endswith("\n")
