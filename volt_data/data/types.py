"""The type policy that maps SQLite values, as the Volt sends them, onto Arrow.

The Volt describes each column in the result header (``DATA_TYPE_TEXT``,
``INTEGER``, ``REAL``, ``BLOB``, ``NULL``, ``UNKNOWN``) and sends every cell as
a one-key object saying what the value is: ``text``, ``integer`` (a decimal
string, full int64 range), ``real`` (a JSON number or ``"NaN"``/``"Infinity"``/
``"-Infinity"``), ``blob`` (standard base64) or ``null``. SQLite is dynamically
typed, so a column's cells may disagree with its header. The policy:

* The *kinds* of a column are its header type (when it is a value type) plus the
  kinds of every non-null cell seen so far.
* One kind: INTEGER -> ``int64`` (parsed from the decimal text, never via a
  float), REAL -> ``float64`` (NaN and ±inf kept), TEXT -> ``large_string``,
  BLOB -> ``large_binary`` (base64-decoded). The "large" variants are used so a
  batch never overflows 32-bit offsets, however big its values.
* No kind (a NULL/UNKNOWN header and only null cells) -> Arrow's ``null`` type;
  a header with a value type keeps that type even when every cell is null.
* INTEGER + REAL -> ``float64`` if every integer lies within ±2**53 (so it is
  exactly representable), otherwise ``large_string``.
* Any other mixture -> ``large_string``: integers as decimal text, reals as
  Python's shortest round-trip text (``"NaN"``, ``"Infinity"``, ``"-Infinity"``
  for the special values), blobs as their standard base64 text.

Every promotion is described in the decoder's ``conversions`` mapping (for
``DataFrame.attrs``). NULL cells are nulls (validity bit cleared) in every type.

Record batches carry the type decided from what was seen *up to* that batch; a
later batch can only widen it. :func:`unify` applies the same policy across all
batches and casts the earlier ones, so a concatenated table has one schema.
"""
from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

INTEGER, REAL, TEXT, BLOB, NULL, UNKNOWN = "integer", "real", "text", "blob", "null", "unknown"
VALUE_KINDS = (INTEGER, REAL, TEXT, BLOB)
_VALUE_KIND_SET = frozenset(VALUE_KINDS)

ARROW_TYPES: dict[str, pa.DataType] = {
    INTEGER: pa.int64(),
    REAL: pa.float64(),
    TEXT: pa.large_string(),
    BLOB: pa.large_binary(),
}

_HEADER_KINDS: dict[str | int, str] = {
    "DATA_TYPE_UNKNOWN": UNKNOWN, 0: UNKNOWN,
    "DATA_TYPE_TEXT": TEXT, 1: TEXT,
    "DATA_TYPE_INTEGER": INTEGER, 2: INTEGER,
    "DATA_TYPE_REAL": REAL, 3: REAL,
    "DATA_TYPE_BLOB": BLOB, 4: BLOB,
    "DATA_TYPE_NULL": NULL, 5: NULL,
}

_SPECIAL_REALS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def header_kind(data_type: str | int | None) -> str:
    """The kind named by a header column's ``type`` (enum name or number); unknown -> ``"unknown"``."""
    return _HEADER_KINDS.get(data_type if data_type is not None else 0, UNKNOWN)


def resolve_type(kinds: Iterable[str], ints_exact: bool = True) -> pa.DataType:
    """The Arrow type that holds every value of the given kinds without loss."""
    values = {kind for kind in kinds if kind in ARROW_TYPES}
    if not values:
        return pa.null()
    if len(values) == 1:
        return ARROW_TYPES[values.pop()]
    if values == {INTEGER, REAL} and ints_exact:
        return pa.float64()
    return pa.large_string()


def describe_conversion(declared: str, kinds: Iterable[str], result: pa.DataType) -> str | None:
    """A one-line note for ``conversions`` when the cells made the column differ from its header."""
    seen = sorted(kind for kind in set(kinds) if kind in ARROW_TYPES and kind != declared)
    if not seen:
        return None
    header = declared.upper() if declared in ARROW_TYPES else f"{declared.upper()} (untyped)"
    if declared not in ARROW_TYPES and len(seen) == 1:
        return None  # an untyped column simply takes the type of its values
    note = f"{header} column held {', '.join(seen)} values: stored as {result}"
    if pa.types.is_large_string(result):
        note += " (integers as decimal text, reals as shortest round-trip text, blobs as base64)"
    elif pa.types.is_floating(result):
        note += " (every integer within ±2**53, exact)"
    return note


# ---------------------------------------------------------------------------
# Cell values -> Arrow arrays


def integer_array(values: list) -> pa.Array:
    """int64 from decimal strings (or JSON numbers), None for nulls; exact, never through float."""
    try:
        return pc.cast(pa.array(values, type=pa.large_string()), pa.int64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array([None if v is None else int(v) for v in values], type=pa.int64())


def real_value(value: float | int | str) -> float:
    """A ``real`` cell as a Python float (the wire spells NaN and the infinities as strings)."""
    if value.__class__ is str:
        return _SPECIAL_REALS[value] if value in _SPECIAL_REALS else float(value)
    return float(value)


def real_array(values: list) -> pa.Array:
    """float64 from JSON numbers and the special-value strings, None for nulls."""
    try:
        return pa.array(values, type=pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array([None if v is None else real_value(v) for v in values], type=pa.float64())


def blob_array(values: list) -> pa.Array:
    """large_binary from standard base64 text, None for nulls."""
    decode = base64.b64decode
    return pa.array([None if v is None else decode(v) for v in values], type=pa.large_binary())


def real_text(value: float) -> str:
    """A float as text: shortest round-trip form, special values spelled as on the wire."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def parts_from_cells(cells: Sequence[dict]) -> dict[str, pa.Array]:
    """Split a column's cell objects into one typed array per value kind present.

    Each array has one slot per cell, null where the cell is of another kind:
    ``integer`` -> int64, ``real`` -> float64, ``text`` -> large_string,
    ``blob`` -> large_binary. :func:`build_column` combines them.
    """
    return {kind: _PART_BUILDERS[kind]([cell.get(kind) for cell in cells]) for kind in cell_kinds(cells)}


def build_column(parts: dict[str, pa.Array], length: int, target: pa.DataType) -> pa.Array:
    """Combine per-kind arrays into one column of ``target`` type.

    The caller picks ``target`` with :func:`resolve_type` from the kinds present,
    so every value fits. The common case, one kind matching the target, is free.
    """
    if not parts:
        return pa.nulls(length, type=target)
    if len(parts) == 1:
        ((kind, array),) = parts.items()
        if array.type == target:
            return array
    if pa.types.is_float64(target):
        real = parts.get(REAL, pa.nulls(length, pa.float64()))
        integer = parts.get(INTEGER, pa.nulls(length, pa.int64()))
        return pc.coalesce(real, pc.cast(integer, pa.float64()))
    texts = [array_as_text(parts[kind]) for kind in (TEXT, INTEGER, REAL, BLOB) if kind in parts]
    return pc.coalesce(*texts) if len(texts) > 1 else texts[0]


def cell_kinds(cells: Sequence[dict]) -> set[str]:
    """The value kinds (not ``null``) present among ``cells``; one C-level pass."""
    kinds = set().union(*cells) if cells else set()
    return kinds & _VALUE_KIND_SET


_PART_BUILDERS = {
    INTEGER: integer_array,
    REAL: real_array,
    TEXT: lambda values: pa.array(values, type=pa.large_string()),
    BLOB: blob_array,
}


def integers_exact(array: pa.Array) -> bool:
    """Whether every integer lies within ±2**53, i.e. converts to float64 exactly."""
    try:
        pc.cast(array, pa.float64(), safe=True)
    except pa.ArrowInvalid:
        return False
    return True


# ---------------------------------------------------------------------------
# Across batches


def array_as_text(array: pa.Array) -> pa.Array:
    """Render an already-typed column as large_string following the policy."""
    kind = array.type
    if pa.types.is_large_string(kind) or pa.types.is_string(kind):
        return array.cast(pa.large_string())
    if pa.types.is_integer(kind) or pa.types.is_null(kind):
        return pc.cast(array, pa.large_string())
    if pa.types.is_floating(kind):
        texts = [None if v is None else real_text(v) for v in array.to_pylist()]
        return pa.array(texts, type=pa.large_string())
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        encode = base64.b64encode
        texts = [None if v is None else encode(v).decode("ascii") for v in array.to_pylist()]
        return pa.array(texts, type=pa.large_string())
    return pc.cast(array, pa.large_string())


def common_type(arrays: Sequence[pa.Array]) -> pa.DataType:
    """The type all ``arrays`` (one column, several batches) can be cast to without loss."""
    types = {array.type for array in arrays if not pa.types.is_null(array.type)}
    if not types:
        return pa.null()
    if len(types) == 1:
        return types.pop()
    if types == {pa.int64(), pa.float64()}:
        if all(integers_exact(a) for a in arrays if pa.types.is_int64(a.type)):
            return pa.float64()
    return pa.large_string()


def cast_column(array: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast one batch's column to the unified type."""
    if array.type == target:
        return array
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), type=target)
    if pa.types.is_large_string(target):
        return array_as_text(array)
    return pc.cast(array, target, safe=True)


def unify(batches: Sequence[pa.RecordBatch], schema: pa.Schema | None = None) -> pa.Table:
    """Concatenate batches into one table, widening columns by the policy above.

    ``schema`` (e.g. ``ExecuteDecoder.schema``) gives the column names and types of
    an empty result, and the types to start from.
    """
    if not batches:
        return (schema or pa.schema([])).empty_table()
    names = batches[0].schema.names
    columns = []
    for index, name in enumerate(names):
        arrays = [batch.column(index) for batch in batches]
        if schema is not None and not pa.types.is_null(schema.field(index).type):
            arrays_with_hint = arrays + [pa.array([], type=schema.field(index).type)]
        else:
            arrays_with_hint = arrays
        target = common_type(arrays_with_hint)
        columns.append(pa.chunked_array([cast_column(a, target) for a in arrays], type=target))
    return pa.Table.from_arrays(columns, names=names)
