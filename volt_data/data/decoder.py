"""Columnar decoding of ``SqliteDatabaseAPI/Execute`` results into Arrow record batches.

The Volt streams a query result as one encrypted frame per row (protocol
reference §5.1). Each decrypted frame is an inner envelope
``{"method_payload": {"json_payload": "<response JSON as a string>"}}``, and the
responses are a ``header``, then one ``row`` each, or a ``status`` (failure) or
``affected_rows``. Parsing that frame by frame, with a dict per row, costs far
more than the network; this decoder instead works on many frames at once:

* Runs of at least ``SCAN_MIN_ROWS`` compact row envelopes go through the
  vectorised scan (:mod:`volt_data.data.row_scan`): numpy locates and checks
  every cell in the decrypted bytes, Arrow converts each column; nothing is
  parsed as JSON. Fed a :class:`~volt_data.protocol.batch_cipher.DecryptedBatch`,
  it reads the decryption buffer in place. It declines anything not byte-exact.
* Other bulk feeds (at least ``ARROW_MIN_FRAMES`` frames) go through Arrow's JSON
  reader twice, envelopes then responses (:mod:`volt_data.data.arrow_json`):
  no Python object is made per row or per cell, and every row of the feed comes
  back at once, in batches of at most ``batch_rows``.
* Smaller feeds, and bulk feeds the strict Arrow reader refuses, take the
  general path: envelopes whose bytes start with the usual prefix (compact or
  ``json.dumps`` spacing) have prefix and closing braces cut off, the string
  literals are joined into one JSON array and a single ``orjson.loads`` yields
  every response; row responses are cut down to their cell arrays the same way
  and accumulate until ``batch_rows`` rows, which one more ``orjson.loads``
  parses; ``zip(*rows)`` turns them into columns.

Either way each column ends up as one typed Arrow array per value kind, which
the type policy combines. Any frame that does not match a fast path (other
spacing or key order, a status, a header) is parsed on its own, so exact bytes
are never relied upon. The type policy, including what happens when SQLite's
dynamic typing makes cells disagree with the header, is described in
:mod:`volt_data.data.types`.
"""
from __future__ import annotations

import gc
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from volt_data.data import arrow_json, row_scan
from volt_data.data import types as policy
from volt_data.errors import CallError, ProtocolError
from volt_data.protocol.batch_cipher import DecryptedBatch

log = logging.getLogger("volt_data.data.decoder")

_ENVELOPE_PREFIXES = (b'{"method_payload":{"json_payload":', b'{"method_payload": {"json_payload": ')
_ROW_PREFIXES = ('{"row":{"column":', '{"row": {"column": ')
#: Below this many frames per feed, Arrow's fixed cost outweighs its bulk speed.
ARROW_MIN_FRAMES = 1024
#: Below this many consecutive row frames, the vectorised scan's fixed cost outweighs its speed.
SCAN_MIN_ROWS = 64


class ExecuteDecoder:
    """Turns decrypted Execute inner envelopes into Arrow record batches, columnar, no dict per row.

    Feed envelopes (or response strings) in arrival order; completed batches (at
    most ``batch_rows`` rows each) come back from :meth:`feed`, the rest from
    :meth:`finish`.
    Each batch is typed by what was seen up to it (a later batch can only widen a
    column); :meth:`unify` concatenates batches into one table with the final
    schema. ``schema`` is known once the header arrived, so an empty result still
    has its columns. ``conversions`` maps a column name to a note on what the type
    policy did to it, for ``DataFrame.attrs``.
    """

    def __init__(self, *, batch_rows: int = 65536, scan_min_rows: int = SCAN_MIN_ROWS) -> None:
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        self.batch_rows = batch_rows
        self.scan_min_rows = max(1, scan_min_rows)
        #: Rows decoded by the vectorised scan (:mod:`volt_data.data.row_scan`), for diagnostics.
        self.scanned_rows = 0
        self.schema: pa.Schema | None = None
        self.affected_rows: int | None = None
        self.conversions: dict[str, str] = {}
        self._names: list[str] = []
        self._declared: list[str] = []
        self._kinds: list[set[str]] = []
        self._ints_exact: list[bool] = []
        self._pending: list[str] = []  # JSON text of each waiting row's cell array

    # -- input -----------------------------------------------------------------

    def feed(self, envelopes: Sequence[bytes] | DecryptedBatch) -> list[pa.RecordBatch]:
        """Decode decrypted ``method_payload`` inner envelopes; return the batches completed.

        ``envelopes`` may also be a :class:`DecryptedBatch` straight from
        :func:`~volt_data.protocol.batch_cipher.decrypt_joined` (no bytes object
        per message is made for rows the vectorised scan decodes).
        """
        if isinstance(envelopes, DecryptedBatch):
            return self._feed_joined(envelopes)
        if len(envelopes) >= self.scan_min_rows and all(e.__class__ is bytes for e in envelopes):
            return self._feed_joined(_join(envelopes))
        return self._feed_envelopes(envelopes)

    def _feed_joined(self, batch: DecryptedBatch) -> list[pa.RecordBatch]:
        """Runs of row envelopes go through the vectorised scan, everything else the general path.

        Messages are handled strictly in order, so a header is applied before the
        rows after it and a status raises where it stands.
        """
        is_row = row_scan.starts_with_row_prefix(batch.buffer, batch.starts, batch.stops)
        boundaries = np.flatnonzero(np.diff(is_row.astype(np.int8))) + 1
        edges = [0, *boundaries.tolist(), len(batch)]
        batches = []
        for first, last in zip(edges[:-1], edges[1:]):
            if is_row[first] and last - first >= self.scan_min_rows:
                scanned = self._feed_scanned(batch, first, last)
                if scanned is not None:
                    batches.extend(scanned)
                    continue
            batches.extend(self._feed_envelopes([batch.message(index) for index in range(first, last)]))
        return batches

    def _feed_scanned(self, batch: DecryptedBatch, first: int, last: int) -> list[pa.RecordBatch] | None:
        """Decode rows ``first:last`` of ``batch`` with :func:`row_scan.scan_rows`; None if it declines."""
        if self.schema is None:
            return None  # rows before any header: the general path names the columns
        starts, stops = batch.starts[first:last], batch.stops[first:last]
        parts = row_scan.scan_rows(batch.buffer, starts, stops, len(self._names))
        if parts is None:
            log.debug("vectorised scan declined %d rows; using the general path", last - first)
            return None
        self.scanned_rows += last - first
        return self._emit_parts(parts, last - first)

    def _feed_envelopes(self, envelopes: Sequence[bytes]) -> list[pa.RecordBatch]:
        if len(envelopes) >= ARROW_MIN_FRAMES and isinstance(envelopes[0], bytes):
            payloads = arrow_json.unwrap_envelopes(envelopes)
            if payloads is not None:
                batches = self._feed_arrow(payloads)
                return batches if batches is not None else self._feed_texts(payloads.to_pylist())
        return self._feed_texts(unwrap_envelopes(envelopes))

    def feed_responses(self, responses: Sequence[str | bytes]) -> list[pa.RecordBatch]:
        """Decode response JSON texts (the ``json_payload`` strings); return the batches completed.

        Raises :class:`~volt_data.errors.CallError` on a ``status`` response and
        :class:`~volt_data.errors.ProtocolError` on malformed JSON.
        """
        if len(responses) >= ARROW_MIN_FRAMES:
            try:
                texts = pa.array(responses, type=pa.string())
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
                texts = None
            if texts is not None and not texts.null_count:
                batches = self._feed_arrow(texts)
                if batches is not None:
                    return batches
        return self._feed_texts(responses)

    def _feed_texts(self, responses: Sequence[str | bytes]) -> list[pa.RecordBatch]:
        pending = self._pending
        compact, spaced = _ROW_PREFIXES
        compact_len, spaced_len = len(compact), len(spaced)
        for response in responses:
            if response.__class__ is not str:
                response = bytes(response).decode("utf-8")
            if response.endswith("}}"):
                if response.startswith(compact):
                    pending.append(response[compact_len:-2])
                    continue
                if response.startswith(spaced):
                    pending.append(response[spaced_len:-2])
                    continue
            self._other_response(response)
        batches = []
        while len(pending) >= self.batch_rows:
            batches.append(self._build(self.batch_rows))
        return batches

    def finish(self) -> list[pa.RecordBatch]:
        """Return the last, partial batch (if any rows are left)."""
        if not self._pending:
            return []
        return [self._build(len(self._pending))]

    def unify(self, batches: Sequence[pa.RecordBatch]) -> pa.Table:
        """Concatenate ``batches`` into one table with this decoder's final schema."""
        return policy.unify(batches, self.schema)

    def _feed_arrow(self, texts: pa.StringArray) -> list[pa.RecordBatch] | None:
        """Decode many responses with Arrow; None (and no state changed) if they need the general path."""
        table = arrow_json.parse_responses(texts)
        if table is None:
            return None
        status = table.column("status").combine_chunks()
        if status.null_count < len(status):
            for value in status.to_pylist():
                if value and (value.get("message") or value.get("code")):
                    return None  # the general path raises the CallError, in order
        headers = table.column("header").combine_chunks()
        rows = table.column("row").combine_chunks()
        row_positions = np.flatnonzero(rows.is_valid().to_numpy(zero_copy_only=False))
        header_positions = np.flatnonzero(headers.is_valid().to_numpy(zero_copy_only=False))
        if len(header_positions) > 1:
            return None
        header = None
        if len(header_positions):
            if len(row_positions) and row_positions[0] < header_positions[0]:
                return None
            header = headers[int(header_positions[0])].as_py()
        elif self.schema is None and len(row_positions):
            return None
        if header is not None:
            names = [str(c.get("name") or "") for c in header.get("column") or []]
            declared = [policy.header_kind(c.get("type")) for c in header.get("column") or []]
            if self.schema is not None and (names != self._names or declared != self._declared):
                return None
            width = len(names)
        else:
            width = len(self._names)
        parts = None
        if len(row_positions):
            lists = pc.struct_field(rows.take(pa.array(row_positions)), [0])
            try:
                parts = arrow_json.row_parts(lists, width)
            except (pa.ArrowInvalid, ValueError):
                return None
            if parts is None:
                return None
        # Nothing can send us to the general path any more: apply the responses.
        if header is not None:
            self._set_header(header.get("column") or [])
        affected = table.column("affected_rows").drop_null()
        if len(affected):
            self.affected_rows = int(affected[-1].as_py())
        return self._emit_parts(parts or [], len(row_positions))

    def _emit_parts(self, parts: list[dict[str, pa.Array]], count: int) -> list[pa.RecordBatch]:
        """Batches of at most ``batch_rows`` from bulk-decoded columns, after any rows still pending."""
        batches = []
        if self._pending:
            batches.append(self._build(len(self._pending)))
        for start in range(0, count, self.batch_rows):
            size = min(self.batch_rows, count - start)
            sliced = [{kind: array.slice(start, size) for kind, array in column.items()} for column in parts]
            batches.append(self._batch(sliced, size))
        return batches

    # -- responses other than fast-path rows -------------------------------------

    def _other_response(self, response: str) -> None:
        try:
            message = orjson.loads(response)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"Execute response is not JSON ({exc}): {response[:80]!r}") from None
        if not isinstance(message, dict):
            raise ProtocolError(f"Execute response is not a JSON object: {response[:80]!r}")
        # A hostile or broken peer can put any JSON value anywhere: a wrong shape
        # is a ProtocolError, never an AttributeError escaping the reader.
        try:
            self._apply_response(message)
        except (AttributeError, TypeError, ValueError, OverflowError) as exc:
            raise ProtocolError(f"malformed Execute response ({exc}): {response[:80]!r}") from None

    def _apply_response(self, message: dict) -> None:
        status = message.get("status")
        if isinstance(status, dict) and (status.get("message") or status.get("code")):
            text = str(status.get("message") or "")
            description = str(status.get("description") or "")
            code = int(status.get("code") or 0)
            raise CallError(description or text or f"status code {code}", code=code, description=description)
        if "header" in message:
            self._set_header((message["header"] or {}).get("column") or [])
        if "row" in message:
            cells = (message["row"] or {}).get("column") or []
            if not isinstance(cells, list):
                raise TypeError("row cells are not a list")
            self._pending.append(orjson.dumps(cells).decode("utf-8"))
        if "affected_rows" in message:
            self.affected_rows = int(message["affected_rows"])

    def _set_header(self, columns: list[dict]) -> None:
        if not isinstance(columns, list) or not all(isinstance(column, dict) for column in columns):
            raise TypeError("header columns are not a list of objects")
        names = [str(column.get("name", "")) for column in columns]
        declared = [policy.header_kind(column.get("type")) for column in columns]
        if self.schema is not None:
            if names == self._names and declared == self._declared:
                return  # a repeated header (e.g. per page) changes nothing
            raise ProtocolError(f"a second, different result header arrived: {names}")
        self._names = names
        self._declared = declared
        self._kinds = [{kind} if kind in policy.ARROW_TYPES else set() for kind in declared]
        self._ints_exact = [True] * len(names)
        self.schema = pa.schema(
            [pa.field(name, policy.resolve_type(kinds)) for name, kinds in zip(names, self._kinds)]
        )

    # -- building batches --------------------------------------------------------

    def _build(self, count: int) -> pa.RecordBatch:
        with _collector_paused():
            return self._build_rows(count)

    def _build_rows(self, count: int) -> pa.RecordBatch:
        fragments = self._pending[:count]
        del self._pending[:count]
        rows = _parse_rows(fragments)
        if self.schema is None:
            width = len(rows[0]) if rows else 0
            log.warning("Execute rows arrived before a header; naming columns column_0..column_%d", width - 1)
            self._set_header([{"name": f"column_{index}"} for index in range(width)])
        width = len(self._names)
        widths = set(map(len, rows))
        if widths - {width}:
            cells = sorted(widths - {width})[0]
            raise ProtocolError(f"a row has {cells} cells but the header {width} columns")
        columns = zip(*rows) if width else ()
        try:
            parts = [policy.parts_from_cells(cells) for cells in columns]
        except (AttributeError, TypeError, ValueError, KeyError, pa.ArrowInvalid) as exc:
            raise ProtocolError(f"malformed cell in Execute rows: {exc}") from None
        return self._batch(parts, len(rows))

    def _batch(self, parts: list[dict[str, pa.Array]], length: int) -> pa.RecordBatch:
        """One record batch from per-column, per-kind arrays, applying the type policy."""
        arrays = [self._column(index, column_parts, length) for index, column_parts in enumerate(parts)]
        self.schema = pa.schema([pa.field(name, array.type) for name, array in zip(self._names, arrays)])
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _column(self, index: int, parts: dict[str, pa.Array], length: int) -> pa.Array:
        parts = {kind: array for kind, array in parts.items() if array.null_count < len(array)}
        kinds = self._kinds[index]
        kinds.update(parts)
        if policy.INTEGER in parts and self._ints_exact[index]:
            # Exactness decides int+real -> float64 or string, now or in a later batch.
            self._ints_exact[index] = policy.integers_exact(parts[policy.INTEGER])
        target = policy.resolve_type(kinds, self._ints_exact[index])
        note = policy.describe_conversion(self._declared[index], kinds, target)
        if note:
            self.conversions[self._names[index]] = note
        return policy.build_column(parts, length, target)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch's cell objects exist.

    Parsing a batch creates hundreds of thousands of small dicts and lists that
    cannot form cycles; with the collector on, their allocation keeps triggering
    collections that walk all of them again, which measured as half of the
    decoding time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _join(envelopes: Sequence[bytes]) -> DecryptedBatch:
    """Envelopes as one newline-separated buffer with their offsets (the scan's input)."""
    lengths = np.fromiter(map(len, envelopes), dtype=np.int64, count=len(envelopes))
    stops = np.cumsum(lengths + 1) - 1
    buffer = np.frombuffer(b"\n".join(envelopes), dtype=np.uint8)
    return DecryptedBatch(buffer, stops - lengths, stops)


def unwrap_envelopes(envelopes: Sequence[bytes]) -> list[str]:
    """The ``json_payload`` strings of decrypted ``method_payload`` envelopes, in order.

    Envelopes with a known prefix are unwrapped with one ``orjson.loads`` for the
    lot; anything else (other spacing or key order) is parsed one by one.
    ``method_end`` envelopes are skipped.
    """
    if not envelopes:
        return []
    first = envelopes[0]
    for prefix in _ENVELOPE_PREFIXES:
        if isinstance(first, (bytes, bytearray)) and first.startswith(prefix):
            size = len(prefix)
            if all(e.startswith(prefix) and e.endswith(b"}}") for e in envelopes):
                try:
                    payloads = orjson.loads(b"[" + b",".join([e[size:-2] for e in envelopes]) + b"]")
                except orjson.JSONDecodeError:
                    break
                # A count or type mismatch means some envelope had more than one
                # string inside; the careful path below will say which.
                if len(payloads) == len(envelopes) and all(p.__class__ is str for p in payloads):
                    return payloads
            break
    return [payload for payload in map(_unwrap_one, envelopes) if payload is not None]


def _unwrap_one(envelope: bytes | str) -> str | None:
    try:
        message = orjson.loads(envelope)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"inner envelope is not JSON ({exc})") from None
    if not isinstance(message, dict):
        raise ProtocolError("inner envelope is not a JSON object")
    payload = message.get("method_payload")
    if not isinstance(payload, dict):
        if "method_end" in message:
            return None
        raise ProtocolError(f"expected a method_payload envelope, got keys {sorted(message)}")
    text = payload.get("json_payload", "{}")
    if not isinstance(text, str):  # an object instead of a string: tolerated, re-serialised
        text = orjson.dumps(text).decode("utf-8")
    return text


def _parse_rows(fragments: list[str]) -> list[list[dict]]:
    """Parse the cell arrays of many rows with one ``orjson.loads``, falling back per row."""
    try:
        rows = orjson.loads("[" + ",".join(fragments) + "]")
        if len(rows) == len(fragments) and all(row.__class__ is list for row in rows):
            return rows
    except orjson.JSONDecodeError:
        pass
    rows = []
    for fragment in fragments:
        response = _ROW_PREFIXES[0] + fragment + "}}"
        try:
            message = orjson.loads(response)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"malformed row response ({exc}): {response[:80]!r}") from None
        cells = (message.get("row") or {}).get("column") or []
        if not isinstance(cells, list):
            raise ProtocolError(f"row cells are not a list: {response[:80]!r}")
        rows.append(cells)
    return rows
