"""Query readers: ``read_sql``, ``read_sql_arrow``, ``iter_batches`` and their async twins.

Every reader is a thin layer over :class:`ExecuteStream`, which runs one
``SqliteDatabaseAPI/Execute`` call in batch mode (frames decrypted together) and
turns the responses into Arrow record batches with the columnar
:class:`~volt_data.data.decoder.ExecuteDecoder`. ``read_sql_arrow`` collects the
batches into a table, ``read_sql`` converts that table to pandas once, and
``iter_batches`` hands them out one at a time so memory stays bounded.

The blocking readers never start an event loop in the caller's thread: they
run the work on the :class:`~volt_data.client.sync.SyncVoltClient`'s background
loop and wait for it. That is what lets them work in a plain script, under
pytest and in Jupyter, whose main thread already runs a loop.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from typing import Any, AsyncIterator, Callable, Coroutine, Iterator

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from volt_data.client.api import VoltClient
from volt_data.client.calls import Call
from volt_data.client.sync import BackgroundLoop, SyncVoltClient
from volt_data.data import row_scan
from volt_data.data import types as policy
from volt_data.data.decoder import ExecuteDecoder
from volt_data.data.default import default_client
from volt_data.data.progress import ProgressOption, make_progress
from volt_data.data.resolve import resolve_database
from volt_data.errors import CallCancelledError, CallError, CallTimeoutError, ProtocolError, VoltError
from volt_data.protocol.batch_cipher import DecryptedBatch

logger = logging.getLogger("volt_data.data.readers")

DEFAULT_BATCH_ROWS = 65536
METADATA_KEY = b"volt_data"
_ROW_MARK = b'{\\"row\\"'  # how a row response starts inside its (JSON-quoted) envelope


def count_rows(envelopes: DecryptedBatch) -> int:
    """How many of the decrypted Execute envelopes are ``row`` responses.

    Paging needs the count as rows arrive, before the decoder has parsed them;
    the response's first key sits right after the envelope prefix (compact
    envelopes are told apart in bulk, the others one by one).
    """
    compact = row_scan.starts_with_row_prefix(envelopes.buffer, envelopes.starts, envelopes.stops)
    others = np.flatnonzero(~compact).tolist()
    return int(compact.sum()) + sum(1 for index in others if _ROW_MARK in envelopes.message(index)[:80])


class ExecuteStream:
    """One Execute call, decoded into Arrow record batches as its frames arrive.

    ``database`` is a database id or name (resolved on start). With
    ``page_size`` the Volt pauses after each page until asked for the next; the
    stream asks as soon as a page's rows are in. :meth:`cancel` ends the call
    on the Volt and makes :meth:`batches` raise
    :class:`~volt_data.errors.CallCancelledError`.
    """

    def __init__(
        self,
        client: VoltClient,
        statement: str,
        database: str,
        *,
        page_size: int | None = None,
        progress: ProgressOption = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        if page_size is not None and page_size < 1:
            raise ValueError("page_size must be a positive number of rows")
        self.client = client
        self.statement = statement
        self.database = database
        self.database_id: str | None = None
        self.page_size = page_size
        self.decoder = ExecuteDecoder(batch_rows=batch_rows)
        self.rows = 0
        self.elapsed = 0.0
        self.call: Call | None = None
        self.cancelled = False
        # Made here, in the caller's thread: a notebook widget must be displayed
        # from the kernel's thread to land in the cell that ran the query.
        self._progress = make_progress(progress, "Execute")

    async def _open(self) -> Call:
        self.database_id = await resolve_database(self.client, self.database)
        start: dict[str, Any] = {"database_id": self.database_id, "statement": self.statement}
        if self.page_size:
            start["page_size"] = self.page_size
        if self.cancelled:
            raise CallCancelledError("Execute was cancelled before it started")
        call = await self.client.streaming_call("Execute", {"start": start}, batch_mode=True)
        self.call = call
        if self.cancelled:  # cancel() arrived while the call was opening
            await self._stop_call()
            raise CallCancelledError("Execute was cancelled")
        return call

    async def batches(self) -> AsyncIterator[pa.RecordBatch]:
        """Record batches in row order; raises CallError (with SQLite's message) on failure."""
        started = time.perf_counter()
        progress = self._progress
        failure: BaseException | None = None
        try:
            call = await self._open()
            in_page = 0
            async for envelopes in call.envelope_batches():
                received = count_rows(envelopes)
                self.rows += received
                if self.page_size and received:
                    in_page += received
                    while in_page >= self.page_size:
                        in_page -= self.page_size
                        await self._next_page(call)
                if progress is not None and received:
                    progress.update(self.rows)
                for batch in self.decoder.feed(envelopes):
                    yield batch
            for batch in self.decoder.finish():
                yield batch
        except ProtocolError as error:
            failure = error
            if self.cancelled:  # frames that were in flight when the call's keys were dropped
                raise CallCancelledError("Execute was cancelled") from None
            raise
        except CallError as error:
            failure = error
            if error.method is None:
                error.method = "Execute"
            raise
        except BaseException as error:  # cancelled task, closed generator, Ctrl-C: stop the server too
            failure = error
            raise
        finally:
            self.elapsed = time.perf_counter() - started
            if self.call is not None and not self.call.ended:
                await self._stop_call()
            if progress is not None:
                progress.close(failure)

    async def _next_page(self, call: Call) -> None:
        if call.ended or call.half_closed:
            return
        try:
            await call.send({"next": {}})
        except CallError:
            pass  # the call ended after its last full page: nothing more to ask for

    async def _stop_call(self) -> None:
        call = self.call
        if call is None or call.ended:
            return
        if not call.half_closed:
            try:
                await call.send({"end": {}})  # the Volt's way to stop paging
            except VoltError:
                pass
        await call.cancel()  # half-close and end locally; later frames are dropped

    async def cancel(self) -> None:
        """Stop the call on the Volt; the reader of :meth:`batches` gets CallCancelledError."""
        self.cancelled = True
        await self._stop_call()

    def metadata(self) -> dict[str, Any]:
        """What a result carries besides its rows (for ``DataFrame.attrs`` / schema metadata)."""
        info: dict[str, Any] = {
            "statement": self.statement,
            "database_id": self.database_id,
            "rows": self.rows,
            "elapsed_seconds": round(self.elapsed, 6),
            "conversions": dict(self.decoder.conversions),
        }
        if self.decoder.affected_rows is not None:
            info["affected_rows"] = self.decoder.affected_rows
        return info


def with_metadata(table: pa.Table | pa.Schema, info: dict[str, Any]):
    """``table`` (or a schema) with ``info`` as JSON under the ``volt_data`` metadata key."""
    metadata = dict(table.schema.metadata or {}) if isinstance(table, pa.Table) else dict(table.metadata or {})
    metadata[METADATA_KEY] = orjson.dumps(info)
    if isinstance(table, pa.Table):
        return table.replace_schema_metadata(metadata)
    return table.with_metadata(metadata)


def table_metadata(table: pa.Table) -> dict[str, Any]:
    """The ``volt_data`` metadata a reader attached to ``table`` (empty if none)."""
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    return orjson.loads(raw) if raw else {}


# ---------------------------------------------------------------------------
# pandas


def _numpy_nullable(arrow_type: pa.DataType):
    if pa.types.is_integer(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_floating(arrow_type):
        return pd.Float64Dtype()
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def table_to_pandas(table: pa.Table, dtype_backend: str = "pyarrow") -> pd.DataFrame:
    """``table`` as a DataFrame: ``pd.ArrowDtype`` columns by default,
    ``"numpy_nullable"`` (Int64, Float64, string) or ``"numpy"`` on request.
    The ``volt_data`` metadata becomes ``DataFrame.attrs``."""
    if dtype_backend == "pyarrow":
        frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    elif dtype_backend == "numpy_nullable":
        frame = table.to_pandas(types_mapper=_numpy_nullable)
    elif dtype_backend == "numpy":
        frame = table.to_pandas()
    else:
        raise ValueError(f"dtype_backend must be 'pyarrow', 'numpy_nullable' or 'numpy', not {dtype_backend!r}")
    frame.attrs.update(table_metadata(table))
    return frame


# ---------------------------------------------------------------------------
# which client, which loop


@contextlib.asynccontextmanager
async def _async_client(client: Any):
    """``(VoltClient, BackgroundLoop | None)`` for an async reader; the loop is set when
    the client lives on a SyncVoltClient's background loop."""
    if isinstance(client, VoltClient):
        yield client, None
    elif client is None or isinstance(client, SyncVoltClient):
        sync_client = client if client is not None else await asyncio.to_thread(default_client)
        yield sync_client.aclient, sync_client.runner
    else:
        async with VoltClient(client) as own:
            yield own, None


async def _on_loop(runner: BackgroundLoop | None, coroutine: Coroutine) -> Any:
    """Await ``coroutine`` on ``runner``'s loop (or here when there is none / we are on it)."""
    if runner is None or runner.loop is asyncio.get_running_loop():
        return await coroutine
    return await asyncio.wrap_future(runner.submit(coroutine))


@contextlib.contextmanager
def _sync_client(client: Any) -> Iterator[SyncVoltClient]:
    if isinstance(client, VoltClient):
        raise TypeError(
            "blocking readers need a SyncVoltClient (volt_data.connect()) or a config; "
            "with an async VoltClient use read_sql_async / read_sql_arrow_async / aiter_batches"
        )
    if client is None:
        yield default_client()
    elif isinstance(client, SyncVoltClient):
        yield client
    else:
        own = SyncVoltClient(client)
        try:
            yield own
        finally:
            own.close()


def run_blocking(
    runner: BackgroundLoop,
    coroutine: Coroutine,
    on_interrupt: Callable[[], Coroutine] | None = None,
    what: str = "query",
) -> Any:
    """Run ``coroutine`` on the background loop and wait; Ctrl-C cancels it there.

    The wait polls, so a KeyboardInterrupt is seen at once on every platform.
    On Ctrl-C, ``on_interrupt()`` (e.g. the stream's ``cancel``) runs to
    completion on the loop before :class:`CallCancelledError` is raised, so the
    connection is clean for the next call.
    """
    if runner.in_loop_thread:
        coroutine.close()
        raise RuntimeError("blocking volt_data reader called from its own event loop; use the async API")
    future = runner.submit(coroutine)
    try:
        while not future.done():
            concurrent.futures.wait([future], timeout=0.1)
        return future.result()
    except KeyboardInterrupt:
        if on_interrupt is not None:
            with contextlib.suppress(Exception):
                runner.submit(on_interrupt()).result(10)
        future.cancel()
        with contextlib.suppress(BaseException):
            future.result(10)
        raise CallCancelledError(f"{what} interrupted (Ctrl-C); it was cancelled on the Volt") from None


# ---------------------------------------------------------------------------
# tables and frames


async def _collect(stream: ExecuteStream, timeout: float | None) -> pa.Table:
    async def gather() -> list[pa.RecordBatch]:
        return [batch async for batch in stream.batches()]

    try:
        batches = await asyncio.wait_for(gather(), timeout) if timeout else await gather()
    except asyncio.TimeoutError:
        raise CallTimeoutError(f"query did not finish within {timeout} s; it was cancelled on the Volt") from None
    table = stream.decoder.unify(batches)
    return with_metadata(table, stream.metadata())


async def read_sql_arrow_async(
    sql: str,
    database: str,
    *,
    client: Any = None,
    page_size: int | None = None,
    progress: ProgressOption = None,
    timeout: float | None = None,
) -> pa.Table:
    """Run ``sql`` on ``database`` (name or id) and return the whole result as an Arrow table.

    ``client`` is a VoltClient, a SyncVoltClient, a config, or None for the
    default connection. The schema metadata key ``volt_data`` holds the
    statement, row count, elapsed seconds, type ``conversions`` and
    ``affected_rows`` (statements without rows).
    """
    async with _async_client(client) as (aclient, runner):
        stream = ExecuteStream(aclient, sql, database, page_size=page_size, progress=progress)
        return await _on_loop(runner, _collect(stream, timeout))


async def read_sql_async(
    sql: str,
    database: str,
    *,
    client: Any = None,
    page_size: int | None = None,
    dtype_backend: str = "pyarrow",
    progress: ProgressOption = None,
    timeout: float | None = None,
) -> pd.DataFrame:
    """Async :func:`read_sql`."""
    table = await read_sql_arrow_async(
        sql, database, client=client, page_size=page_size, progress=progress, timeout=timeout
    )
    return table_to_pandas(table, dtype_backend)


def read_sql_arrow(
    sql: str,
    database: str,
    *,
    client: Any = None,
    page_size: int | None = None,
    progress: ProgressOption = None,
    timeout: float | None = None,
) -> pa.Table:
    """Blocking :func:`read_sql_arrow_async`: the result as one Arrow table.

    Ctrl-C cancels the query on the Volt and raises CallCancelledError.
    """
    with _sync_client(client) as sync_client:
        stream = ExecuteStream(sync_client.aclient, sql, database, page_size=page_size, progress=progress)
        return run_blocking(sync_client.runner, _collect(stream, timeout), stream.cancel)


def read_sql(
    sql: str,
    database: str,
    *,
    client: Any = None,
    page_size: int | None = None,
    dtype_backend: str = "pyarrow",
    progress: ProgressOption = None,
    timeout: float | None = None,
) -> pd.DataFrame:
    """Run ``sql`` on ``database`` (name or id) and return a DataFrame.

    Columns are ``pd.ArrowDtype`` by default (int64 exact, NULLs as NA in every
    type); ``dtype_backend="numpy_nullable"`` or ``"numpy"`` on request.
    ``DataFrame.attrs`` carries the statement, row count, elapsed seconds, the
    decoder's type ``conversions`` and, for statements without rows,
    ``affected_rows``. ``page_size`` asks the Volt for the result in pages of
    that many rows. ``progress``: None = on in a notebook or terminal, True/False
    force, or a callable ``progress(rows, elapsed)``.
    """
    table = read_sql_arrow(sql, database, client=client, page_size=page_size, progress=progress, timeout=timeout)
    return table_to_pandas(table, dtype_backend)


# ---------------------------------------------------------------------------
# streaming


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Cast a later batch to the stream's fixed schema (set by the first batch).

    SQLite columns may change type mid-result; a stream cannot widen a type it
    already announced, so a column that needs more than null -> T, int -> exact
    float or anything -> text raises a VoltError naming it.
    """
    if batch.schema.equals(schema, check_metadata=False):
        return batch
    arrays = []
    for index, field in enumerate(schema):
        array = batch.column(index)
        target = field.type
        if array.type == target:
            arrays.append(array)
            continue
        if pa.types.is_null(array.type) or pa.types.is_large_string(target) or (
            pa.types.is_floating(target) and pa.types.is_int64(array.type) and policy.integers_exact(array)
        ):
            arrays.append(policy.cast_column(array, target))
            continue
        raise VoltError(
            f"column {field.name!r} changed type from {target} to {array.type} after the first batch; "
            "read it with read_sql/read_sql_arrow (which widen the whole column) or CAST it in SQL"
        )
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


async def aiter_batches(
    sql: str,
    database: str,
    *,
    client: Any = None,
    page_size: int | None = None,
    progress: ProgressOption = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> AsyncIterator[pa.RecordBatch]:
    """Async iterator of record batches (at most ``batch_rows`` rows each), in row order.

    Leaving the loop early (``break``) or cancelling the task ends the call on the Volt.
    """
    async with _async_client(client) as (aclient, runner):
        stream = ExecuteStream(aclient, sql, database, page_size=page_size, progress=progress, batch_rows=batch_rows)
        batches = stream.batches()
        try:
            while True:
                try:
                    batch = await _on_loop(runner, batches.__anext__())
                except StopAsyncIteration:
                    return
                yield batch
        finally:
            await _on_loop(runner, batches.aclose())


class VoltBatchReader:
    """A streaming query result: a pyarrow ``RecordBatchReader`` plus :meth:`cancel`.

    Iterate it, call ``read_next_batch()``, ``read_all()`` or ``read_pandas()``,
    or hand it to anything that takes an Arrow stream (``__arrow_c_stream__``;
    ``.reader`` is the underlying ``pa.RecordBatchReader``). :meth:`cancel` (or
    :meth:`close` before the end) stops the call on the Volt.
    """

    def __init__(self, reader: pa.RecordBatchReader, stream: ExecuteStream, runner: BackgroundLoop, close) -> None:
        self.reader = reader
        self._stream = stream
        self._runner = runner
        self._close = close

    @property
    def schema(self) -> pa.Schema:
        return self.reader.schema

    @property
    def stream(self) -> ExecuteStream:
        """The running call (rows so far, conversions, statement)."""
        return self._stream

    def read_next_batch(self) -> pa.RecordBatch:
        return self.reader.read_next_batch()

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return iter(self.reader)

    def read_all(self) -> pa.Table:
        return with_metadata(self.reader.read_all(), self._stream.metadata())

    def read_pandas(self, dtype_backend: str = "pyarrow") -> pd.DataFrame:
        return table_to_pandas(self.read_all(), dtype_backend)

    def __arrow_c_stream__(self, requested_schema=None):
        return self.reader.__arrow_c_stream__(requested_schema)

    def cancel(self) -> None:
        """End the call on the Volt; reading further raises CallCancelledError."""
        run_blocking(self._runner, self._stream.cancel(), what="cancel")

    def close(self) -> None:
        """Release the stream (cancelling the call if rows are still coming)."""
        self._close()

    def __enter__(self) -> "VoltBatchReader":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def iter_batches(
    sql: str,
    database: str,
    *,
    client: Any = None,
    page_size: int | None = None,
    progress: ProgressOption = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> VoltBatchReader:
    """Stream the result of ``sql`` as record batches, holding about one batch in memory.

    The schema is fixed by the first batch (read before this returns); see
    :func:`conform_batch` for what happens when a later batch disagrees.
    """
    with contextlib.ExitStack() as cleanup:
        sync_client = cleanup.enter_context(_sync_client(client))
        runner = sync_client.runner
        stream = ExecuteStream(
            sync_client.aclient, sql, database, page_size=page_size, progress=progress, batch_rows=batch_rows
        )
        batches = stream.batches()

        def next_batch() -> pa.RecordBatch | None:
            try:
                return run_blocking(runner, batches.__anext__(), stream.cancel)
            except StopAsyncIteration:
                return None

        first = next_batch()
        schema = first.schema if first is not None else (stream.decoder.schema or pa.schema([]))
        schema = with_metadata(schema, {"statement": sql, "database_id": stream.database_id})
        owned = cleanup.pop_all()

    state = {"finished": False}

    def finish() -> None:
        if not state["finished"]:
            state["finished"] = True
            with contextlib.suppress(Exception):
                run_blocking(runner, batches.aclose(), what="close")
            owned.close()

    def generate() -> Iterator[pa.RecordBatch]:
        try:
            if first is not None:
                yield conform_batch(first, schema)
                while (batch := next_batch()) is not None:
                    yield conform_batch(batch, schema)
        finally:
            finish()

    reader = pa.RecordBatchReader.from_batches(schema, generate())
    return VoltBatchReader(reader, stream, runner, finish)
