"""``volt-data sql "SELECT ..." --db NAME``: run a query and print or save the result.

``table`` prints the result as text; ``csv``, ``parquet`` and ``arrow`` (IPC
stream) are written batch by batch from :func:`~volt_data.data.iter_batches`,
so a large result never has to fit in memory. CSV shows blobs as base64.
``volt_data.cli`` registers it through :func:`configure_parser` and :func:`run`.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any, BinaryIO, Iterator

import pyarrow as pa

from volt_data.data import types as policy
from volt_data.data.readers import iter_batches, read_sql

FORMATS = ("table", "csv", "parquet", "arrow")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sql`` subcommand to an argparse ``subparsers`` object."""
    parser = subparsers.add_parser("sql", help="run a SQL statement on a Volt database")
    configure_parser(parser)
    return parser


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The ``sql`` subcommand's arguments (``volt_data.cli`` registers it)."""
    parser.add_argument("statement", help="the SQL statement")
    parser.add_argument("--db", required=True, help="database name or resource id")
    parser.add_argument("--config", help="fusebox client config file (default: $VOLT_CONFIG)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("-o", "--output", help="write to this file instead of stdout (required for parquet)")
    parser.add_argument("--page-size", type=int, default=None, help="rows per page requested from the Volt")
    parser.add_argument("--no-progress", action="store_true", help="never show progress")
    parser.set_defaults(handler=run)


def _text_blobs(batch: pa.RecordBatch) -> pa.RecordBatch:
    arrays = [
        policy.array_as_text(column) if pa.types.is_large_binary(column.type) or pa.types.is_binary(column.type) else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


@contextlib.contextmanager
def _binary_output(path: str | None) -> Iterator[BinaryIO]:
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
    else:
        with open(path, "wb") as handle:
            yield handle


def run(args: argparse.Namespace) -> int:
    """Run the ``sql`` subcommand; returns the process exit status."""
    from volt_data.client.sync import SyncVoltClient

    progress = False if args.no_progress else None
    if args.format == "parquet" and not args.output:
        print("volt-data sql: --format parquet needs -o FILE", file=sys.stderr)
        return 2
    client = SyncVoltClient(args.config) if args.config else None
    try:
        if args.format == "table":
            frame = read_sql(args.statement, args.db, client=client, page_size=args.page_size, progress=progress)
            text = frame.to_string(index=False) if len(frame.columns) else f"{frame.attrs.get('affected_rows', 0)} rows affected"
            if args.output:
                with open(args.output, "w", encoding="utf-8") as handle:
                    handle.write(text + "\n")
            else:
                print(text)
            return 0
        with iter_batches(args.statement, args.db, client=client, page_size=args.page_size, progress=progress) as reader:
            with _binary_output(args.output) as output:
                _write_batches(reader, args.format, output)
        return 0
    finally:
        if client is not None:
            client.close()


def _write_batches(reader, output_format: str, output: BinaryIO) -> None:
    if output_format == "csv":
        import pyarrow.csv as pacsv

        schema = pa.schema(
            [
                pa.field(f.name, pa.large_string()) if pa.types.is_large_binary(f.type) or pa.types.is_binary(f.type) else f
                for f in reader.schema
            ]
        )
        with pacsv.CSVWriter(output, schema) as writer:
            for batch in reader:
                writer.write_batch(_text_blobs(batch))
    elif output_format == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetWriter(output, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
    else:
        with pa.ipc.new_stream(output, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
