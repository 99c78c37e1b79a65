"""Rows of a SQLite cursor as the JSON text of ``SqlExecuteResponse`` messages.

This is the hot path of the local Volt: every result row becomes one
``{"row":{"column":[...]}}`` payload. The cell key follows each *value's* Python
type (SQLite is dynamically typed, a column may hold several types), integers
are decimal strings (int64 in proto3 JSON), non-finite reals are the strings
``"NaN"``/``"Infinity"``/``"-Infinity"``, blobs standard base64.

Speed comes from compiling, once per result header, an encoder whose fast path
is one inline type test per column (the type the header announced); any other
value falls back to the generic per-type encoder. That keeps the common case
free of function calls per cell.
"""
from __future__ import annotations

import base64
import binascii
import math
from json.encoder import encode_basestring  # C-accelerated JSON string quoting
from typing import Callable, Sequence

DATA_TYPE_UNKNOWN = "DATA_TYPE_UNKNOWN"
DATA_TYPE_TEXT = "DATA_TYPE_TEXT"
DATA_TYPE_INTEGER = "DATA_TYPE_INTEGER"
DATA_TYPE_REAL = "DATA_TYPE_REAL"
DATA_TYPE_BLOB = "DATA_TYPE_BLOB"
DATA_TYPE_NULL = "DATA_TYPE_NULL"

_TYPE_OF_VALUE = {
    int: DATA_TYPE_INTEGER,
    str: DATA_TYPE_TEXT,
    float: DATA_TYPE_REAL,
    bytes: DATA_TYPE_BLOB,
}


def _real_cell(value: float) -> str:
    if value - value == 0:  # finite
        return '{"real":%r}' % value
    if math.isnan(value):
        return '{"real":"NaN"}'
    return '{"real":"Infinity"}' if value > 0 else '{"real":"-Infinity"}'


def encode_cell(value: object) -> str:
    """One ``Variant`` as JSON text, keyed by the value's own type."""
    kind = type(value)
    if kind is int:
        return '{"integer":"%d"}' % value
    if kind is str:
        return '{"text":' + encode_basestring(value) + "}"
    if kind is float:
        return _real_cell(value)
    if value is None:
        return '{"null":true}'
    if kind is bool:  # never from SQLite, but parameters may echo back through functions
        return '{"integer":"%d"}' % value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return '{"blob":"' + base64.b64encode(bytes(value)).decode("ascii") + '"}'
    return '{"text":' + encode_basestring(str(value)) + "}"


def column_types(rows: Sequence[Sequence[object]], width: int) -> list[str]:
    """Header types: per column, the type of its first non-NULL value among ``rows``.

    Python's sqlite3 does not expose declared column types, so the first fetched
    batch decides. A column that is NULL throughout that batch is
    ``DATA_TYPE_NULL``; with no rows at all every column is ``DATA_TYPE_UNKNOWN``.
    Cells always carry their own key, so a later value of another type still
    decodes correctly.
    """
    if not rows:
        return [DATA_TYPE_UNKNOWN] * width
    types = [DATA_TYPE_NULL] * width
    missing = set(range(width))
    for row in rows:
        for index in list(missing):
            value = row[index]
            if value is not None:
                types[index] = _TYPE_OF_VALUE.get(type(value), DATA_TYPE_TEXT)
                missing.discard(index)
        if not missing:
            break
    return types


_FAST_CELL = {
    DATA_TYPE_INTEGER: """(('{"integer":"%d"}' % v@) if type(v@) is int else cell(v@))""",
    DATA_TYPE_TEXT: """(('{"text":' + quote(v@) + '}') if type(v@) is str else cell(v@))""",
    DATA_TYPE_REAL: """(('{"real":%r}' % v@) if type(v@) is float and v@ - v@ == 0 else cell(v@))""",
    DATA_TYPE_BLOB: """(('{"blob":"' + b64(v@, newline=False).decode() + '"}') if type(v@) is bytes else cell(v@))""",
    DATA_TYPE_NULL: """('{"null":true}' if v@ is None else cell(v@))""",
}

RowEncoder = Callable[[Sequence[Sequence[object]]], list[str]]


def row_encoder(types: Sequence[str]) -> RowEncoder:
    """A function turning a batch of rows into their ``{"row": ...}`` JSON strings.

    ``types`` (from :func:`column_types`) chooses each column's inline fast path.
    """
    width = len(types)
    if width == 0:
        return lambda rows: ['{"row":{}}' for _ in rows]
    names = ", ".join(f"v{index}" for index in range(width)) + ","
    cells = [_FAST_CELL.get(kind, "cell(v@)").replace("@", str(index)) for index, kind in enumerate(types)]
    template = '{"row":{"column":[' + ",".join(["%s"] * width) + "]}}"
    source = f"def encode(rows):\n    return [{template!r} % ({', '.join(cells)},) for {names} in rows]\n"
    namespace: dict = {"cell": encode_cell, "quote": encode_basestring, "b64": binascii.b2a_base64}
    exec(compile(source, f"<row encoder {width} columns>", "exec"), namespace)
    return namespace["encode"]


def header_json(names: Sequence[str], types: Sequence[str]) -> str:
    """The ``{"header": ...}`` message text."""
    # proto3 JSON omits an enum at its default (DATA_TYPE_UNKNOWN).
    columns = ",".join(
        '{"name":' + encode_basestring(name) + ("" if kind == DATA_TYPE_UNKNOWN else ',"type":"' + kind + '"') + "}"
        for name, kind in zip(names, types)
    )
    return '{"header":{"column":[' + columns + "]}}"
