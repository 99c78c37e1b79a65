"""Rows of a SQLite cursor as the JSON text of ``SqlExecuteResponse`` messages.

This is the hot path of the local Volt: every result row becomes one
``{"row":{"column":[...]}}`` payload. The cell key follows each *value's* Python
type (SQLite is dynamically typed, a column may hold several types), integers
are decimal strings (int64 in proto3 JSON), non-finite reals are the strings
``"NaN"``/``"Infinity"``/``"-Infinity"``, blobs standard base64.

Speed comes from encoding a fetched batch column by column: a column of one
type (the common case) costs a type check and at most one C-level ``map``, and
each row is then a single ``%`` of a template made for the batch; only columns
that mix types (NULLs, say) are encoded cell by cell.
"""
from __future__ import annotations

import base64
import binascii
import functools
import math
from json.encoder import encode_basestring  # C-accelerated JSON string quoting
from typing import Callable, Sequence

import numpy as np
import orjson

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


_NULL_CELL = '{"null":true}'
_B64_LINE = functools.partial(binascii.b2a_base64, newline=False)


def _integers_or_cells(column: Sequence[object]) -> list[str]:
    return [('{"integer":"%d"}' % v) if type(v) is int else _NULL_CELL if v is None else encode_cell(v)
            for v in column]


def _texts_or_cells(column: Sequence[object]) -> list[str]:
    return [('{"text":' + encode_basestring(v) + "}") if type(v) is str else _NULL_CELL if v is None
            else encode_cell(v) for v in column]


def _reals_or_cells(column: Sequence[object]) -> list[str]:
    return [('{"real":%r}' % v) if type(v) is float and v - v == 0 else _NULL_CELL if v is None
            else encode_cell(v) for v in column]


def _cells(column: Sequence[object]) -> list[str]:
    return [_NULL_CELL if v is None else encode_cell(v) for v in column]


#: Per header type, the encoder of a column that mixes types (NULLs, say).
_MIXED_COLUMN = {
    DATA_TYPE_INTEGER: _integers_or_cells,
    DATA_TYPE_TEXT: _texts_or_cells,
    DATA_TYPE_REAL: _reals_or_cells,
}

_INT, _STR, _FLOAT, _BYTES, _NONE = {int}, {str}, {float}, {bytes}, {type(None)}


def _reals_as_repr(column: Sequence[float]) -> list[str] | None:
    """``[repr(v) for v in column]`` made by one ``orjson`` call, or None where that is not sure.

    ``repr`` of a float costs more than the rest of its row. ``orjson`` prints
    the same shortest round-trip digits, and for 1e-4 <= |v| < 1e16 (and zero)
    the same positional form with a ``.``; outside that range ``repr`` switches
    to its own exponent form (``1e+16``, ``1e-05``). So this covers columns whose
    every value lies in that range, and checks the output's form on top (no
    exponent, one ``.`` per value); anything else is None and goes to ``repr``.
    """
    values = np.array(column, dtype=np.float64)
    magnitudes = np.abs(values)
    if not (((magnitudes >= 1e-4) & (magnitudes < 1e16)) | (values == 0)).all():  # NaN, inf: False
        return None
    joined = orjson.dumps(column)[1:-1]
    if b"e" in joined or joined.count(b".") != len(column):
        return None
    return joined.decode().split(",")


def _column(column: Sequence[object], kind: str) -> tuple[str, Sequence[object] | None]:
    """One column of a batch: its cell's %-format and the values that format takes.

    A column holding one type throughout (the common case) is formatted by the
    row template itself, from the raw values or from one C-level ``map``; only
    a column that mixes types is encoded cell by cell. ``None`` for the values:
    the format is a constant (a column of NULLs).
    """
    types = set(map(type, column))
    if types == _INT:
        return '{"integer":"%d"}', column
    if types == _STR:
        return '{"text":%s}', list(map(encode_basestring, column))
    if types == _FLOAT:
        texts = _reals_as_repr(column)
        if texts is not None:
            return '{"real":%s}', texts
        if all(map(math.isfinite, column)):
            return '{"real":%r}', column
    if types == _NONE:
        return _NULL_CELL, None
    if types == _BYTES:
        return '{"blob":"%s"}', list(map(bytes.decode, map(_B64_LINE, column)))
    return "%s", _MIXED_COLUMN.get(kind, _cells)(column)


RowEncoder = Callable[[Sequence[Sequence[object]]], list[str]]


def row_encoder(types: Sequence[str]) -> RowEncoder:
    """A function turning a batch of rows into their ``{"row": ...}`` JSON strings.

    ``types`` (from :func:`column_types`) chooses the cell-by-cell fast path of
    a column that mixes types. The batch is encoded column by column (see
    :func:`_column`) and each row is then one ``%`` of a template made for the
    batch: far fewer Python steps per cell than encoding row by row.
    """
    width = len(types)

    def encode(rows: Sequence[Sequence[object]]) -> list[str]:
        if not rows:
            return []
        if width == 0:
            return ['{"row":{}}'] * len(rows)
        formats, values = [], []
        for column, kind in zip(zip(*rows), types):
            cell_format, column_values = _column(column, kind)
            formats.append(cell_format)
            if column_values is not None:
                values.append(column_values)
        template = '{"row":{"column":[' + ",".join(formats) + "]}}"
        if not values:
            return [template] * len(rows)
        return list(map(template.__mod__, zip(*values)))

    return encode


def header_json(names: Sequence[str], types: Sequence[str]) -> str:
    """The ``{"header": ...}`` message text."""
    # proto3 JSON omits an enum at its default (DATA_TYPE_UNKNOWN).
    columns = ",".join(
        '{"name":' + encode_basestring(name) + ("" if kind == DATA_TYPE_UNKNOWN else ',"type":"' + kind + '"') + "}"
        for name, kind in zip(names, types)
    )
    return '{"header":{"column":[' + columns + "]}}"
