"""ImportCSV: CSV uploaded in blocks becomes rows of a SQLite table.

The upload is spooled to a temporary file first (a quoted field may span
blocks), then parsed and inserted in one transaction in a worker thread:
``abort`` or a disconnect before ``upload_complete`` leaves the database
untouched. The first CSV row names the columns. With ``create_table`` the
table is created with types inferred from the first ``schema_scan_limit`` rows:
INTEGER if every non-empty value is an integer, else REAL if every one is a
number, else TEXT. Empty fields are stored as NULL.
"""
from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
import tempfile
from typing import TYPE_CHECKING, Callable, Iterator

from volt_data.local.call import INVALID_ARGUMENTS, ServerCall, StatusError
from volt_data.schema import message_to_json
from volt_data.schema.tdx.volt_api.data.v1 import sqlite_database_api_pb2 as database_api

if TYPE_CHECKING:
    from volt_data.local.services.sqlite import SqliteService

DEFAULT_SCAN_LIMIT = 100


def _is_integer(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _is_real(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def infer_types(rows: list[list[str]], width: int) -> list[str]:
    """Column types (INTEGER/REAL/TEXT) from sample rows; all-empty columns are TEXT."""
    types = []
    for index in range(width):
        values = [row[index] for row in rows if index < len(row) and row[index] != ""]
        if values and all(_is_integer(value) for value in values):
            types.append("INTEGER")
        elif values and all(_is_real(value) for value in values):
            types.append("REAL")
        else:
            types.append("TEXT")
    return types


def _converter(kind: str) -> Callable[[str], object]:
    def convert(text: str) -> object:
        if text == "":
            return None
        try:
            return int(text) if kind == "INTEGER" else float(text) if kind == "REAL" else text
        except ValueError:
            return text  # SQLite is dynamically typed: keep what does not fit

    return convert


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _load(path: str, spool, table: str, create: bool, scan_limit: int, progress: Callable[[int, int], None]) -> int:
    spool.seek(0)
    text = io.TextIOWrapper(spool, encoding="utf-8-sig", newline="")
    rows: Iterator[list[str]] = csv.reader(text)
    header = next(rows, None)
    if not header:
        raise StatusError(INVALID_ARGUMENTS, "the CSV upload is empty (no header row)")
    sample = [row for _, row in zip(range(scan_limit), rows)]
    total = len(sample) + sum(1 for _ in rows)
    text.detach()
    types = infer_types(sample, len(header))
    converters = [_converter(kind) for kind in types]
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN")
        try:
            if create:
                columns = ", ".join(f"{_quote(name)} {kind}" for name, kind in zip(header, types))
                connection.execute(f"CREATE TABLE {_quote(table)} ({columns})")
            insert = (
                f"INSERT INTO {_quote(table)} ({', '.join(_quote(n) for n in header)}) "
                f"VALUES ({', '.join('?' * len(header))})"
            )
            spool.seek(0)
            text = io.TextIOWrapper(spool, encoding="utf-8-sig", newline="")
            reader = csv.reader(text)
            next(reader)
            count = 0
            for row in reader:
                if len(row) != len(header):
                    raise StatusError(
                        INVALID_ARGUMENTS, f"CSV row {count + 2} has {len(row)} fields, the header has {len(header)}"
                    )
                connection.execute(insert, [convert(value) for convert, value in zip(converters, row)])
                count += 1
                progress(count, total)
            text.detach()
            connection.execute("COMMIT")
            return count
        except sqlite3.Error as error:
            raise StatusError(INVALID_ARGUMENTS, str(error)) from None
        except UnicodeDecodeError as error:
            raise StatusError(INVALID_ARGUMENTS, f"the CSV is not UTF-8: {error}") from None
        finally:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
    finally:
        connection.close()


async def import_csv(service: SqliteService, call: ServerCall) -> None:
    """Run one ImportCSV call against ``service``'s databases."""
    request = await call.receive()
    if request is None:
        return
    if request.WhichOneof("payload") != "configuration":
        raise StatusError(INVALID_ARGUMENTS, "ImportCSV must begin with a 'configuration' request")
    config = request.configuration
    if not config.table_name:
        raise StatusError(INVALID_ARGUMENTS, "configuration.table_name is required")
    service.database(call.identity, config.database_id, write=True)
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryFile(dir=service.directory) as spool:
        if config.source_resource_id:
            raise StatusError(INVALID_ARGUMENTS, "source_resource_id is not supported by the local Volt; upload blocks")
        while True:
            request = await call.receive()
            kind = None if request is None else request.WhichOneof("payload")
            if kind is None or kind == "abort" or call.closed:
                return  # nothing was written yet
            if kind == "upload_complete":
                break
            if kind == "block":
                spool.write(request.block)
            else:
                raise StatusError(INVALID_ARGUMENTS, f"unexpected '{kind}' during a CSV upload")
        interval = config.progress_interval
        # Progress is reported from the worker thread; one task sends it, in order.
        reports: asyncio.Queue = asyncio.Queue()

        def progress(count: int, total: int) -> None:
            if interval and count % interval == 0 and count != total:
                message = message_to_json(database_api.SqlImportCSVResponse(row_count=count, total_rows=total))
                loop.call_soon_threadsafe(reports.put_nowait, message)

        async def send_reports() -> None:
            while (message := await reports.get()) is not None:
                await call.send(message)

        sender = asyncio.create_task(send_reports())
        try:
            count = await asyncio.to_thread(
                _load, str(service.path_for(config.database_id)), spool, config.table_name,
                config.create_table, config.schema_scan_limit or DEFAULT_SCAN_LIMIT, progress,
            )
        finally:
            loop.call_soon_threadsafe(reports.put_nowait, None)
            await sender
        final = database_api.SqlImportCSVResponse(row_count=count, total_rows=count)
        await call.send(message_to_json(final))
