"""Bulk parsing of Execute frames with Arrow's (multi-threaded, C++) JSON reader.

Used by :class:`~volt_data.data.decoder.ExecuteDecoder` when it is fed many
envelopes at once: the envelopes become one newline-delimited buffer, Arrow
extracts every ``json_payload`` string, those are joined with newlines again
and parsed against the ``SqlExecuteResponse`` schema, so no Python object is
created per row or per cell. Arrow's parser accepts ``NaN``/``Infinity`` only as
bare literals, so ``real`` cells spelled as strings (as proto3 JSON does) are
rewritten first. Anything this strict reader refuses (integers sent as JSON
numbers, numeric enum values, extra keys, raw newlines) makes the functions
return ``None`` and the caller takes its general orjson path instead.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from volt_data.data import types as policy

_CELL = pa.struct(
    [
        ("integer", pa.string()),
        ("real", pa.float64()),
        ("text", pa.string()),
        ("blob", pa.string()),
        ("null", pa.bool_()),
    ]
)
_HEADER_COLUMN = pa.struct([("name", pa.string()), ("type", pa.string())])
_RESPONSE_SCHEMA = pa.schema(
    [
        ("row", pa.struct([("column", pa.list_(_CELL))])),
        ("header", pa.struct([("column", pa.list_(_HEADER_COLUMN))])),
        ("status", pa.struct([("code", pa.int64()), ("message", pa.string()), ("description", pa.string())])),
        ("affected_rows", pa.int64()),
    ]
)
_ENVELOPE_SCHEMA = pa.schema([("method_payload", pa.struct([("json_payload", pa.string())]))])
_BLOCK_SIZE = 1 << 24

# '"real":"NaN"' can only be a key and its value in a valid response: inside a JSON
# string every quote is escaped, so the unescaped sequence cannot occur there.
_SPECIAL_REALS = [
    (f'"real"{colon}"{name}"'.encode(), f'"real"{colon}{name}'.encode())
    for colon in (":", ": ")
    for name in ("NaN", "Infinity", "-Infinity")
]


def _read(buffer: bytes | pa.Buffer, schema: pa.Schema) -> pa.Table | None:
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    try:
        read_options = pa_json.ReadOptions(block_size=_BLOCK_SIZE)
        return pa_json.read_json(pa.BufferReader(buffer), parse_options=options, read_options=read_options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def unwrap_envelopes(envelopes: Sequence[bytes]) -> pa.StringArray | None:
    """Every envelope's ``json_payload`` string, or None if any envelope is not a plain payload."""
    table = _read(b"\n".join(envelopes), _ENVELOPE_SCHEMA)
    if table is None or table.num_rows != len(envelopes):
        return None
    payloads = pc.struct_field(table.column(0).combine_chunks(), [0])
    if payloads.null_count:
        return None
    return payloads


def parse_responses(responses: pa.StringArray) -> pa.Table | None:
    """Parse response JSON strings against the SqlExecuteResponse schema, or None if refused."""
    lines = pc.binary_join_element_wise(responses, "\n", "")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    data = lines.buffers()[2][offsets[0] : offsets[-1]].to_pybytes()
    if b'"NaN"' in data or b'Infinity"' in data:
        for spelled, literal in _SPECIAL_REALS:
            data = data.replace(spelled, literal)
    table = _read(data, _RESPONSE_SCHEMA)
    if table is None or table.num_rows != len(responses):
        return None
    return table


def row_parts(rows: pa.ListArray, width: int) -> list[dict[str, pa.Array]] | None:
    """Per column, the per-kind arrays of ``rows`` (each a list of ``width`` cells); None if ragged."""
    if rows.null_count or len(rows) == 0:
        return None
    if pc.any(pc.not_equal(pc.list_value_length(rows), width)).as_py():
        return None
    cells = rows.flatten()
    count = len(rows)
    parts = []
    for index in range(width):
        column = cells.take(pa.array(np.arange(index, count * width, width)))
        kinds = {}
        for kind in policy.VALUE_KINDS:
            values = column.field(kind)
            if values.null_count == count:
                continue
            if kind == policy.INTEGER:
                values = pc.cast(values, pa.int64())
            elif kind == policy.TEXT:
                values = values.cast(pa.large_string())
            elif kind == policy.BLOB:
                values = policy.blob_array(values.to_pylist())
            kinds[kind] = values
        parts.append(kinds)
    return parts
