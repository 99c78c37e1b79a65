"""Vectorised decoding of compact Execute ``row`` envelopes, straight from the decrypted bytes.

A row envelope as the Volt (and the local Volt) writes it is compact JSON whose
``json_payload`` is the response JSON as an escaped string::

    {"method_payload":{"json_payload":"{\\"row\\":{\\"column\\":[{\\"integer\\":\\"4\\"}]}}"}}

Parsing that twice per row, even in C, creates Python objects per row or cell.
This module instead locates every cell with numpy over the whole buffer of a
batch, checks the structure with vectorised comparisons, and lets Arrow gather
and convert the values column by column (``take`` and ``cast`` over one binary
array whose elements are the value slices, zero-copy on the buffer).

Why locating cells is safe: in the envelope, ``{\\"`` (brace, backslash, quote)
followed by a key's first letter only occurs where the *response* has an object
start followed by a key. Inside a text value a quote is escaped twice
(``\\\\\\"``), so the byte before the escaped quote is a backslash, never a
brace; a text that ends in ``{`` gives ``{\\"}``, told apart by the ``}``. Every
message of a batch must be a row with exactly ``width`` cells of the known kinds,
byte for byte; anything else (other spacing, a header or status, a ragged row, a
value Arrow cannot convert) makes :func:`scan_rows` return ``None`` and the caller uses its general path.
"""
from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from volt_data.data import types as policy
from volt_data.protocol.batch_cipher import words_at_every_offset

Buffer = bytes | bytearray | memoryview | np.ndarray

ROW_PREFIX = b'{"method_payload":{"json_payload":"{\\"row\\":{\\"column\\":['
ROW_SUFFIX = b']}}"}}'
_RESPONSE_OFFSET = len(b'{"method_payload":{"json_payload":"')  # where {\"row starts
_COLUMN_OFFSET = _RESPONSE_OFFSET + len(b'{\\"row\\":')  # where {\"column starts
_NULL_CELL = b'{\\"null\\":true}'
_QUOTED_END = b'\\"}'

#: Each cell form: its opening bytes up to the value and how many bytes follow the
#: value (``\\"}`` or ``}``). The byte after ``{\\"`` tells the kinds apart.
_CELL_FORMS = {
    policy.INTEGER: (b'{\\"integer\\":\\"', 3),
    policy.TEXT: (b'{\\"text\\":\\"', 3),
    policy.BLOB: (b'{\\"blob\\":\\"', 3),
    policy.REAL: (b'{\\"real\\":', 1),
}
_BRACE, _BACKSLASH, _QUOTE, _CLOSE = (ord(c) for c in '{\\"}')


def _word(literal: bytes, offset: int) -> int:
    return int.from_bytes(literal[offset : offset + 8], "little")


def _kind_tables() -> dict[str, np.ndarray]:
    """Lookup tables indexed by a cell's kind byte, so every cell is checked in one gather.

    Two 8-byte words cover each opening after its known ``{\\"``: one at
    ``first``, one ending where the value starts (real, 9 bytes: both the same).
    A null cell is an "opening" of 14 bytes with an empty value. An unknown kind
    byte gets first word 0, which no cell (its first byte is "{") can match.
    """
    tables = {
        "opening": np.zeros(256, dtype=np.int64),
        "closing": np.zeros(256, dtype=np.int64),
        "first": np.zeros(256, dtype=np.int64),
        "first_word": np.zeros(256, dtype=np.uint64),
        "last_word": np.zeros(256, dtype=np.uint64),
    }
    for opening, closing in [*_CELL_FORMS.values(), (_NULL_CELL, 0)]:
        kind_byte, size = opening[3], len(opening)
        first = 3 if size >= 11 else size - 8
        tables["opening"][kind_byte] = size
        tables["closing"][kind_byte] = closing
        tables["first"][kind_byte] = first
        tables["first_word"][kind_byte] = _word(opening, first)
        tables["last_word"][kind_byte] = _word(opening, size - 8)
    return tables


_KIND = _kind_tables()
_NULL_BYTE = _NULL_CELL[3]
_SEPARATOR_MASK = np.uint64(0xFFFF_0000)
_QUOTE_MASK = np.uint64(0xFFFF)
_ESCAPED_QUOTE = np.uint64(int.from_bytes(b'\\"', "little"))


def _separators(width: int) -> np.ndarray:
    """Per cell of a row, the expected bytes 2-3 of its tail word: "}," and, last, "}]"."""
    expected = np.full(width, int.from_bytes(b"\0\0},", "little"), dtype=np.uint64)
    expected[-1] = int.from_bytes(b"\0\0}]", "little")
    return expected


#: Rows checked at a time: each chunk's bytes (~1 MiB) stay in the CPU cache across
#: the dozen gathers that check them, instead of each gather missing on every row.
_CHUNK_ROWS = 4096


def scan_rows(
    buffer: Buffer, starts: np.ndarray, stops: np.ndarray, width: int
) -> list[dict[str, pa.Array]] | None:
    """Per column, one array per value kind present (null where another kind), or None.

    ``buffer`` holds the messages; message ``i`` is ``buffer[starts[i]:stops[i]]``
    (anything between messages, such as padding or newlines, is ignored).
    ``width`` is the number of columns the header announced.
    """
    count = len(starts)
    if count == 0 or width == 0:
        return None
    data = np.frombuffer(buffer, dtype=np.uint8)
    starts = np.asarray(starts, dtype=np.int64)
    stops = np.asarray(stops, dtype=np.int64)
    shortest = len(ROW_PREFIX) + len(ROW_SUFFIX)
    if starts.min() < 0 or stops.max() > len(data) or (stops - starts < shortest).any():
        return None
    words = words_at_every_offset(data)
    chunks = []
    for first in range(0, count, _CHUNK_ROWS):
        rows = slice(first, first + _CHUNK_ROWS)
        chunk = _locate(words, data, starts[rows], stops[rows], width)
        if chunk is None:
            return None
        chunks.append(chunk)
    kind_bytes, value_starts, value_stops = (np.concatenate(part) for part in zip(*chunks))
    values = _value_slices(buffer, value_starts.ravel(), value_stops.ravel())
    try:
        return [_column_parts(values, kind_bytes[:, column], column, width) for column in range(width)]
    except (pa.ArrowInvalid, pa.ArrowTypeError, orjson.JSONDecodeError, ValueError, TypeError):
        return None


def _locate(
    words: np.ndarray, data: np.ndarray, starts: np.ndarray, stops: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Check the rows ``starts``/``stops`` byte for byte; kind byte and value range of every cell."""
    if not _matches(words, data, starts, ROW_PREFIX):
        return None
    if not _matches(words, data, stops - len(ROW_SUFFIX), ROW_SUFFIX):
        return None
    cells = _cell_positions(data, starts, stops, width)
    if cells is None:
        return None
    return _value_ranges(words, data, cells, stops)


def starts_with_row_prefix(buffer: Buffer, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Boolean per message: does it begin like a compact row envelope (so the scan may try it)?"""
    data = np.frombuffer(buffer, dtype=np.uint8)
    starts = np.asarray(starts, dtype=np.int64)
    result = np.asarray(stops, dtype=np.int64) - starts >= len(ROW_PREFIX) + len(ROW_SUFFIX)
    if result.any():
        candidates = starts[result]
        words = words_at_every_offset(data)
        # Two words tell a row from a header, status or end; scan_rows checks the rest.
        result[result] = (words[candidates] == _word(ROW_PREFIX, 0)) & (
            words[candidates + _RESPONSE_OFFSET] == _word(ROW_PREFIX, _RESPONSE_OFFSET)
        )
    return result


def _found(words: np.ndarray, data: np.ndarray, positions: np.ndarray, literal: bytes) -> np.ndarray:
    """Per position: is ``literal`` there? (positions must leave room for it.)"""
    size = len(literal)
    found = np.ones(len(positions), dtype=bool)
    if size < 8:
        for offset, byte in enumerate(literal):
            found &= data[positions + offset] == byte
        return found
    for offset in [*range(0, size - 8, 8), size - 8]:
        found &= words[positions + offset] == _word(literal, offset)
    return found


def _matches(words: np.ndarray, data: np.ndarray, positions: np.ndarray, literal: bytes) -> bool:
    """Whether ``literal`` is at every one of ``positions``."""
    return bool(_found(words, data, positions, literal).all())


def _cell_positions(data: np.ndarray, starts: np.ndarray, stops: np.ndarray, width: int) -> np.ndarray | None:
    """The ``{\\"`` position of every cell, shape (rows, width), if each row has exactly ``width``.

    Only the span of these messages is searched; the gaps between them (padding,
    newlines) hold no braces, and a stray key would fail the count or position checks.
    """
    low, high = int(starts[0]), int(stops[-1])
    span = data[low:high]
    braces = np.flatnonzero(span[:-3] == _BRACE)
    # A text ending in "{" looks like a key with its closing \"}; no key starts with "}".
    is_key = (span[braces + 1] == _BACKSLASH) & (span[braces + 2] == _QUOTE) & (span[braces + 3] != _CLOSE)
    keys = braces[is_key] + low
    per_row = width + 2  # {\"row, {\"column, then the cells
    if len(keys) != len(starts) * per_row:
        return None
    keys = keys.reshape(len(starts), per_row)
    if (keys[:, 0] != starts + _RESPONSE_OFFSET).any() or (keys[:, 1] != starts + _COLUMN_OFFSET).any():
        return None
    cells = keys[:, 2:]
    if (cells[:, 0] != starts + len(ROW_PREFIX)).any() or (cells[:, -1] >= stops - len(ROW_SUFFIX)).any():
        return None
    return cells


def _value_ranges(
    words: np.ndarray, data: np.ndarray, cells: np.ndarray, stops: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Kind byte, value start and value stop of every cell, after checking each cell's bytes."""
    ends = np.empty_like(cells)  # one past each cell's closing brace
    ends[:, :-1] = cells[:, 1:] - 1
    ends[:, -1] = stops - len(ROW_SUFFIX)
    # One word per cell from three bytes before its end: bytes 2-3 are its closing
    # brace and what follows ("," or, after the last cell, "]"); bytes 0-1 are \" for
    # a quoted value. One gather checks all of that.
    tails = words[ends - 3]
    if ((tails & _SEPARATOR_MASK) != _separators(cells.shape[1])).any():
        return None
    kind_bytes = data[cells + 3]
    # An unknown kind byte fails here (see _kind_tables).
    if (words[cells + _KIND["first"][kind_bytes]] != _KIND["first_word"][kind_bytes]).any():
        return None
    opening = _KIND["opening"][kind_bytes]
    if (words[cells + opening - 8] != _KIND["last_word"][kind_bytes]).any():
        return None
    closing = _KIND["closing"][kind_bytes]
    if (((tails & _QUOTE_MASK) != _ESCAPED_QUOTE) & (closing == len(_QUOTED_END))).any():
        return None
    value_starts = cells + opening
    value_stops = ends - closing
    lengths = value_stops - value_starts
    if ((lengths < 0) | ((kind_bytes == _NULL_BYTE) & (lengths != 0))).any():
        return None
    return kind_bytes, value_starts, value_stops


def _value_slices(buffer: Buffer, value_starts: np.ndarray, value_stops: np.ndarray) -> pa.LargeBinaryArray:
    """A binary array over ``buffer`` whose even elements are the values (odd ones the gaps)."""
    offsets = np.empty(2 * len(value_starts), dtype=np.int64)
    offsets[0::2] = value_starts
    offsets[1::2] = value_stops
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(buffer)]
    )


def _column_parts(
    values: pa.LargeBinaryArray, kind_bytes: np.ndarray, column: int, width: int
) -> dict[str, pa.Array]:
    """The per-kind arrays of one column (the shape the type policy's ``build_column`` takes)."""
    positions = 2 * (np.arange(len(kind_bytes), dtype=np.int64) * width + column)
    parts = {}
    for kind, (opening, _closing) in _CELL_FORMS.items():
        mask = kind_bytes != opening[3]
        if mask.all():
            continue
        indices = pa.array(positions, mask=mask if mask.any() else None)
        parts[kind] = _CONVERTERS[kind](values.take(indices))
    return parts


def _as_text_unchecked(values: pa.Array) -> pa.Array:
    """The binary values as large_string without a UTF-8 pass: for numbers only, where
    the numeric cast that follows refuses anything that is not an ASCII number."""
    return pa.Array.from_buffers(pa.large_string(), len(values), values.buffers(), values.null_count, values.offset)


def _integers(values: pa.Array) -> pa.Array:
    return pc.cast(_as_text_unchecked(values), pa.int64())


def _reals(values: pa.Array) -> pa.Array:
    texts = _as_text_unchecked(values)
    if pc.any(pc.starts_with(texts, "\\")).as_py():  # "NaN", "Infinity" and numbers sent as strings
        if not pc.all(pc.ends_with(pc.if_else(pc.starts_with(texts, "\\"), texts, '\\"'), '\\"')).as_py():
            raise ValueError("unbalanced quotes around a real")
        texts = pc.replace_substring(texts, '\\"', "")
    return pc.cast(texts, pa.float64())


def _texts(values: pa.Array) -> pa.Array:
    """Text values; those with escapes are unescaped twice (envelope, then response level)."""
    if _plain(values):
        return values.cast(pa.large_string())
    strings = values.to_pylist()
    present = [value for value in strings if value is not None]
    # A value with a bare quote would split into more elements: the count check catches it.
    level_one = orjson.loads(b'["' + b'","'.join(present) + b'"]')
    level_two = orjson.loads('["' + '","'.join(level_one) + '"]')
    if len(level_one) != len(present) or len(level_two) != len(present):
        raise ValueError("a text value is not one JSON string")
    unescaped = iter(level_two)
    return pa.array([None if value is None else next(unescaped) for value in strings], type=pa.large_string())


def _blobs(values: pa.Array) -> pa.Array:
    if not _plain(values):
        raise ValueError("escaped characters in a blob")
    return policy.blob_array(values.to_pylist())


def _plain(values: pa.Array) -> bool:
    """Whether the values hold no quote, backslash or control byte (so they are literal text)."""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)
    offsets = offsets[values.offset : values.offset + len(values) + 1]
    used = np.frombuffer(values.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return not ((used < 0x20) | (used == _QUOTE) | (used == _BACKSLASH)).any()


_CONVERTERS = {policy.INTEGER: _integers, policy.REAL: _reals, policy.TEXT: _texts, policy.BLOB: _blobs}
