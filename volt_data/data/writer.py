"""``to_volt``: write a DataFrame (or Arrow table) into a table of a Volt database.

Column types come from the frame's Arrow types:

=====================================  ==========================================
Arrow type                             SQLite column
=====================================  ==========================================
int8..int64, uint8..uint64             INTEGER (exact; uint64 above int64 fails)
bool                                   INTEGER (1/0)
float16/32/64                          REAL
string, large_string                   TEXT
binary, large_binary, fixed binary     BLOB
timestamp, date, time                  TEXT, ISO-8601 (``datetime.isoformat()``)
null (a column of only NULLs)          no declared type
anything else (decimal, …)             TEXT (``str(value)``)
=====================================  ==========================================

``method="bulk_update"`` (the default) sends ``INSERT`` statements through
``BulkUpdate`` in chunks, with literals that SQLite reads back exactly: NULL
for missing values, ``X'…'`` for bytes, decimal int64, text with quotes doubled
(text holding NUL goes through ``CAST(X'…' AS TEXT)``), and reals written as
``mantissa / 2**k`` products of integers (SQLite's own decimal parser is not
correctly rounded, so ``repr`` alone would change ~0.5% of doubles); NaN is
stored as NULL (SQLite has no NaN), ±inf as ``±9e999``. Each BulkUpdate call is
one transaction; the first also creates (or replaces) the table, so a failure in
a later chunk leaves the earlier chunks written.

``method="import_csv"`` streams CSV blocks through ``ImportCSV``. CSV cannot
carry bytes or tell NULL from empty text, so it is refused for frames with
binary columns or with NULL or empty strings in text columns; the Volt infers
each column's type from the values (it is faster for large numeric frames).
"""
from __future__ import annotations

import asyncio
import csv
import io
import math
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from volt_data.client.api import VoltClient
from volt_data.data.progress import ProgressOption, make_progress
from volt_data.data.readers import ExecuteStream, _async_client, _on_loop, _sync_client, run_blocking
from volt_data.data.resolve import resolve_database
from volt_data.errors import VoltError

IF_EXISTS = ("fail", "replace", "append")
METHODS = ("bulk_update", "import_csv")
ROWS_PER_INSERT = 500
REQUEST_CHARS = 512 * 1024  # SQL text per BulkUpdate call, well under any frame limit
CSV_BLOCK_BYTES = 256 * 1024


class TableExistsError(VoltError, ValueError):
    """``to_volt(..., if_exists="fail")`` found the table already there."""


def quote_identifier(name: str) -> str:
    """A SQLite identifier in double quotes (inner quotes doubled)."""
    return '"' + str(name).replace('"', '""') + '"'


def sqlite_type(arrow_type: pa.DataType) -> str:
    """The declared SQLite column type for an Arrow type (see the module table)."""
    if pa.types.is_integer(arrow_type) or pa.types.is_boolean(arrow_type):
        return "INTEGER"
    if pa.types.is_floating(arrow_type):
        return "REAL"
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type) or pa.types.is_fixed_size_binary(
        arrow_type
    ):
        return "BLOB"
    if pa.types.is_null(arrow_type):
        return ""
    if pa.types.is_dictionary(arrow_type):
        return sqlite_type(arrow_type.value_type)
    return "TEXT"


# ---------------------------------------------------------------------------
# literals


def real_literal(value: float) -> str:
    """A SQL expression SQLite evaluates to exactly ``value`` (NaN -> NULL)."""
    if value != value:
        return "NULL"
    if math.isinf(value):
        return "9e999" if value > 0 else "-9e999"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    mantissa, exponent = math.frexp(value)
    integer = int(mantissa * (1 << 53))
    shift = exponent - 53
    while integer % 2 == 0:  # shortest integer mantissa: 21.0 -> 21, not 21 * 2**48 / 2**48
        integer //= 2
        shift += 1
    text = f"CAST({integer} AS REAL)"
    while shift > 0:
        step = min(shift, 62)
        text += f"*{1 << step}"
        shift -= step
    while shift < 0:
        step = min(-shift, 62)
        text += f"/{1 << step}"
        shift += step
    return text


def text_literal(value: str) -> str:
    if "\x00" in value:
        return f"CAST(X'{value.encode('utf-8').hex()}' AS TEXT)"
    return "'" + value.replace("'", "''") + "'"


def _column_literals(array: pa.ChunkedArray | pa.Array) -> list[str]:
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.cast(kind.value_type)
        kind = kind.value_type
    values = array.to_pylist()
    if pa.types.is_boolean(kind):
        return ["NULL" if v is None else ("1" if v else "0") for v in values]
    if pa.types.is_integer(kind):
        return ["NULL" if v is None else str(v) for v in values]
    if pa.types.is_floating(kind):
        return ["NULL" if v is None else real_literal(v) for v in values]
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return ["NULL" if v is None else text_literal(v) for v in values]
    if sqlite_type(kind) == "BLOB":
        return ["NULL" if v is None else f"X'{v.hex()}'" for v in values]
    if pa.types.is_temporal(kind):
        return ["NULL" if v is None else text_literal(v.isoformat()) for v in values]
    return ["NULL" if v is None else text_literal(str(v)) for v in values]


def insert_statements(table: pa.Table, name: str) -> list[str]:
    """``INSERT`` statements (``ROWS_PER_INSERT`` rows each) writing every row of ``table``."""
    head = f"INSERT INTO {quote_identifier(name)} ({', '.join(map(quote_identifier, table.column_names))}) VALUES "
    statements = []
    for offset in range(0, table.num_rows, ROWS_PER_INSERT):
        part = table.slice(offset, ROWS_PER_INSERT)
        columns = [_column_literals(column) for column in part.columns]
        rows = ["(" + ",".join(cells) + ")" for cells in zip(*columns)]
        statements.append(head + ",".join(rows))
    return statements


def create_statement(table: pa.Table, name: str) -> str:
    columns = ", ".join(
        f"{quote_identifier(field.name)} {sqlite_type(field.type)}".rstrip() for field in table.schema
    )
    return f"CREATE TABLE {quote_identifier(name)} ({columns})"


def as_arrow(frame: pd.DataFrame | pa.Table) -> pa.Table:
    """A DataFrame (index dropped) or table as an Arrow table with unique string column names."""
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    names = [str(name) for name in table.column_names]
    if len(set(names)) != len(names):
        raise ValueError("to_volt needs unique column names")
    return table.rename_columns(names)


# ---------------------------------------------------------------------------
# the write


async def _table_exists(client: VoltClient, database_id: str, name: str) -> bool:
    statement = (
        "SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = " + text_literal(name)
    )
    stream = ExecuteStream(client, statement, database_id, progress=False)
    rows = 0
    async for batch in stream.batches():
        rows += batch.num_rows
    return rows > 0


async def _bulk_update(client: VoltClient, database_id: str, statements: list[str]) -> None:
    await client.bulk_update({"database_id": database_id, "statement": statements})


def _chunks(prelude: list[str], inserts: list[str], counts: list[int]):
    """Group statements into BulkUpdate requests of about REQUEST_CHARS; yields (statements, rows)."""
    group, size, rows = list(prelude), sum(map(len, prelude)), 0
    for statement, count in zip(inserts, counts):
        if group and size + len(statement) > REQUEST_CHARS and rows:
            yield group, rows
            group, size, rows = [], 0, 0
        group.append(statement)
        size += len(statement)
        rows += count
    if group:
        yield group, rows


def _csv_check(table: pa.Table) -> None:
    for field, column in zip(table.schema, table.columns):
        kind = sqlite_type(field.type)
        if kind == "BLOB":
            raise ValueError(f"column {field.name!r} holds bytes, which CSV cannot carry; use method='bulk_update'")
        if kind == "TEXT" and column.null_count:
            raise ValueError(f"column {field.name!r} has NULLs, which CSV cannot tell from empty text; use 'bulk_update'")
        if (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)) and pc.any(
            pc.equal(column, "")
        ).as_py():
            raise ValueError(f"column {field.name!r} has empty strings, which CSV turns into NULL; use 'bulk_update'")


def _csv_blocks(table: pa.Table) -> list[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    blocks = []
    for offset in range(0, table.num_rows, ROWS_PER_INSERT):
        part = table.slice(offset, ROWS_PER_INSERT)
        columns = []
        for column in part.columns:
            values = column.to_pylist()
            if pa.types.is_floating(column.type):
                values = ["" if v is None or v != v else repr(v) for v in values]
            elif pa.types.is_boolean(column.type):
                values = ["" if v is None else int(v) for v in values]
            elif pa.types.is_temporal(column.type):
                values = ["" if v is None else v.isoformat() for v in values]
            else:
                values = ["" if v is None else v for v in values]
            columns.append(values)
        writer.writerows(zip(*columns))
        if buffer.tell() >= CSV_BLOCK_BYTES:
            blocks.append(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        blocks.append(buffer.getvalue().encode("utf-8"))
    return blocks


async def _import_csv(client: VoltClient, database_id: str, name: str, table: pa.Table) -> None:
    import base64

    call = await client.streaming_call(
        "ImportCSV", {"configuration": {"database_id": database_id, "table_name": name, "create_table": False}}
    )
    for block in _csv_blocks(table):
        await call.send({"block": base64.b64encode(block).decode("ascii")})
    await call.send({"upload_complete": True})
    await call.end()
    await call.wait()


async def _write(
    client: VoltClient,
    frame: pd.DataFrame | pa.Table,
    name: str,
    database: str,
    if_exists: str,
    method: str,
    progress: ProgressOption,
) -> int:
    if if_exists not in IF_EXISTS:
        raise ValueError(f"if_exists must be one of {', '.join(IF_EXISTS)}, not {if_exists!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    table = as_arrow(frame)
    if method == "import_csv":
        _csv_check(table)
    database_id = await resolve_database(client, database)
    exists = await _table_exists(client, database_id, name)
    if exists and if_exists == "fail":
        raise TableExistsError(f"table {name!r} already exists; pass if_exists='replace' or 'append'")
    prelude = []
    if exists and if_exists == "replace":
        prelude.append(f"DROP TABLE {quote_identifier(name)}")
    if not exists or if_exists == "replace":
        prelude.append(create_statement(table, name))
    reporter = make_progress(progress, f"to_volt {name}")
    written = 0
    failure: BaseException | None = None
    try:
        if method == "import_csv":
            if prelude:
                await _bulk_update(client, database_id, prelude)
            await _import_csv(client, database_id, name, table)
            written = table.num_rows
        else:
            inserts = await asyncio.to_thread(insert_statements, table, name)
            counts = [min(ROWS_PER_INSERT, table.num_rows - i * ROWS_PER_INSERT) for i in range(len(inserts))]
            for statements, rows in _chunks(prelude, inserts, counts):
                await _bulk_update(client, database_id, statements)
                written += rows
                if reporter is not None:
                    reporter.update(written)
    except BaseException as error:
        failure = error
        raise
    finally:
        if reporter is not None:
            reporter.close(failure)
    return written


async def to_volt_async(
    frame: pd.DataFrame | pa.Table,
    table: str,
    database: str,
    *,
    client: Any = None,
    if_exists: str = "fail",
    method: str = "bulk_update",
    progress: ProgressOption = None,
) -> int:
    """Async :func:`to_volt`."""
    async with _async_client(client) as (aclient, runner):
        return await _on_loop(runner, _write(aclient, frame, table, database, if_exists, method, progress))


def to_volt(
    frame: pd.DataFrame | pa.Table,
    table: str,
    database: str,
    *,
    client: Any = None,
    if_exists: str = "fail",
    method: str = "bulk_update",
    progress: ProgressOption = None,
) -> int:
    """Write ``frame`` into ``table`` of ``database`` (name or id); return the rows written.

    ``if_exists`` as in pandas ``to_sql``: ``"fail"`` raises TableExistsError,
    ``"replace"`` drops and recreates the table, ``"append"`` inserts into it
    (creating it if missing). Types and literals: see the module docstring.
    """
    with _sync_client(client) as sync_client:
        coroutine = _write(sync_client.aclient, frame, table, database, if_exists, method, progress)
        return run_blocking(sync_client.runner, coroutine, what="to_volt")


__all__: list[str] = ["TableExistsError", "to_volt", "to_volt_async", "sqlite_type", "real_literal"]
