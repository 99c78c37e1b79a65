"""ExecuteDecoder against a plain reference encoder (json.dumps of proto3-style responses)."""
from __future__ import annotations

import base64
import json
import math

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from volt_data.data.decoder import ExecuteDecoder, unwrap_envelopes
from volt_data.data.types import unify
from volt_data.errors import CallError, ProtocolError
from volt_data.protocol.batch_cipher import decrypt_joined, encrypt_cbc

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
COMPACT = (",", ":")


# -- reference encoder ---------------------------------------------------------------------


def cell(value: object, kind: str | None = None) -> dict:
    """Encode one Python value as the Volt does (proto3 JSON of a Variant)."""
    if value is None:
        return {"null": True}
    if isinstance(value, bool):
        raise TypeError("no booleans in SQLite")
    if isinstance(value, int):
        return {"integer": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"real": "NaN"}
        if math.isinf(value):
            return {"real": "Infinity" if value > 0 else "-Infinity"}
        return {"real": value}
    if isinstance(value, bytes):
        return {"blob": base64.b64encode(value).decode()}
    return {"text": value}


def header(columns: list[tuple[str, str]]) -> dict:
    return {"header": {"column": [{"name": name, "type": f"DATA_TYPE_{kind}"} for name, kind in columns]}}


def row(values: list) -> dict:
    return {"row": {"column": [cell(v) for v in values]}}


def envelope(response: dict, separators: tuple[str, str] | None = None) -> bytes:
    inner = json.dumps(response, separators=separators)
    return json.dumps({"method_payload": {"json_payload": inner}}, separators=separators).encode()


def decode(responses: list[dict], separators: tuple[str, str] | None = COMPACT, batch_rows: int = 4):
    decoder = ExecuteDecoder(batch_rows=batch_rows)
    batches = decoder.feed([envelope(r, separators) for r in responses]) + decoder.finish()
    return decoder, batches, decoder.unify(batches)


def same(left: object, right: object) -> bool:
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left) and math.isnan(right):
        return True
    return left == right and type(left) is type(right)


def assert_columns(table: pa.Table, expected: dict[str, list]) -> None:
    actual = table.to_pydict()
    assert list(actual) == list(expected)
    for name, values in expected.items():
        assert len(actual[name]) == len(values), name
        for got, want in zip(actual[name], values):
            assert same(got, want), (name, got, want)


# -- every type ------------------------------------------------------------------------------

ALL_TYPES = [("i", "INTEGER"), ("t", "TEXT"), ("r", "REAL"), ("b", "BLOB"), ("n", "NULL")]


@pytest.mark.parametrize("separators", [COMPACT, None], ids=["compact", "json.dumps"])
def test_every_type_with_nulls_and_extremes(separators: tuple[str, str] | None) -> None:
    values = [
        [INT64_MIN, "é✓ unicode 🚀", 0.5, b"\x00\xff", None],
        [INT64_MAX, "", -0.0, b"", None],
        [None, None, None, None, None],
        [0, 'quote " and \\ and \n newline', math.nan, b"abc", None],
        [9007199254740993, "x", math.inf, bytes(range(256)), None],
        [-1, "y", -math.inf, b"z", None],
    ]
    decoder, batches, table = decode([header(ALL_TYPES)] + [row(v) for v in values], separators)
    assert len(batches) == 2  # batch_rows=4
    assert table.schema == pa.schema(
        [
            ("i", pa.int64()),
            ("t", pa.large_string()),
            ("r", pa.float64()),
            ("b", pa.large_binary()),
            ("n", pa.null()),
        ]
    )
    assert_columns(table, {name: [v[i] for v in values] for i, (name, _) in enumerate(ALL_TYPES)})
    assert decoder.conversions == {}
    assert table.column("i").null_count == 1 and table.column("b").null_count == 1


def test_empty_result_keeps_the_schema() -> None:
    decoder, batches, table = decode([header(ALL_TYPES)])
    assert batches == []
    assert decoder.schema.names == ["i", "t", "r", "b", "n"]
    assert table.num_rows == 0 and table.schema == decoder.schema
    assert decoder.schema.field("i").type == pa.int64()


def test_all_null_typed_column_keeps_its_header_type() -> None:
    _, _, table = decode([header([("i", "INTEGER"), ("u", "UNKNOWN")]), row([None, None])])
    assert table.schema.field("i").type == pa.int64()
    assert table.schema.field("u").type == pa.null()
    assert table.to_pydict() == {"i": [None], "u": [None]}


def test_untyped_column_takes_the_type_of_its_values() -> None:
    decoder, _, table = decode([header([("n", "NULL")]), row([None]), row([5])])
    assert table.schema.field("n").type == pa.int64()
    assert table.to_pydict() == {"n": [None, 5]}
    assert decoder.conversions == {}


# -- promotions ---------------------------------------------------------------------------------


def test_integer_column_with_text_becomes_string() -> None:
    decoder, _, table = decode([header([("a", "INTEGER")]), row([INT64_MIN]), row(["seven"]), row([None])])
    assert table.schema.field("a").type == pa.large_string()
    assert table.to_pydict() == {"a": [str(INT64_MIN), "seven", None]}
    assert "text" in decoder.conversions["a"] and "large_string" in decoder.conversions["a"]


def test_integer_in_real_column_becomes_float_when_exact() -> None:
    decoder, _, table = decode([header([("r", "REAL")]), row([1.5]), row([3]), row([-(2**53)])])
    assert table.schema.field("r").type == pa.float64()
    assert_columns(table, {"r": [1.5, 3.0, float(-(2**53))]})
    assert "r" in decoder.conversions


def test_big_integer_and_real_become_string_without_loss() -> None:
    decoder, _, table = decode([header([("r", "INTEGER")]), row([2**53 + 1]), row([0.25]), row([math.nan])])
    assert table.to_pydict() == {"r": [str(2**53 + 1), "0.25", "NaN"]}
    assert "r" in decoder.conversions


def test_promotion_in_a_later_batch_is_applied_to_earlier_batches() -> None:
    rows = [row([i]) for i in range(5)] + [row([b"\x01"]), row([2.5])]
    decoder, batches, table = decode([header([("x", "INTEGER")])] + rows, batch_rows=2)
    assert batches[0].schema.field("x").type == pa.int64()  # nothing odd seen yet
    assert table.schema.field("x").type == pa.large_string()
    assert table.to_pydict() == {"x": ["0", "1", "2", "3", "4", "AQ==", "2.5"]}
    assert decoder.schema.field("x").type == pa.large_string()


def test_late_big_integer_stops_a_float_promotion() -> None:
    rows = [row([1]), row([0.5]), row([2**60])]
    _, batches, table = decode([header([("x", "REAL")])] + rows, batch_rows=2)
    assert batches[0].schema.field("x").type == pa.float64()
    assert table.schema.field("x").type == pa.large_string()
    assert table.to_pydict() == {"x": ["1.0", "0.5", str(2**60)]}


def test_unify_without_a_decoder() -> None:
    first = pa.record_batch({"x": pa.array([1, None], pa.int64())})
    second = pa.record_batch({"x": pa.array([0.5], pa.float64())})
    table = unify([first, second])
    assert table.to_pydict() == {"x": [1.0, None, 0.5]}


# -- other responses --------------------------------------------------------------------------


def test_status_raises_call_error() -> None:
    status = {"status": {"code": 3, "message": "invalidArguments", "description": "no such table: x"}}
    with pytest.raises(CallError) as caught:
        decode([status])
    assert caught.value.code == 3
    assert caught.value.description == "no such table: x"
    assert caught.value.kind == "status"
    assert "no such table: x" in str(caught.value)


def test_empty_status_is_success() -> None:
    decoder, batches, _ = decode([{"status": {}}, {"affected_rows": 3}])
    assert batches == [] and decoder.affected_rows == 3


def test_affected_rows_only() -> None:
    decoder = ExecuteDecoder()
    assert decoder.feed_responses(['{"affected_rows": 3}']) == []
    assert decoder.finish() == []
    assert decoder.affected_rows == 3 and decoder.schema is None


def test_key_order_and_spacing_variants() -> None:
    responses = [
        '{"header": {"column": [{"type": "DATA_TYPE_INTEGER", "name": "a"}, {"name": "b", "type": 1}]}}',
        '{ "row" : { "column" : [ { "integer" : "1" } , { "text" : "x" } ] } }',
        '{"row":{"column":[{"integer":"2"},{"null":true}]}}',
        b'{"row": {"column": [{"integer": "3"}, {"text": "z"}]}}',
    ]
    decoder = ExecuteDecoder()
    table = decoder.unify(decoder.feed_responses(responses) + decoder.finish())
    assert table.to_pydict() == {"a": [1, 2, 3], "b": ["x", None, "z"]}
    # Envelope spellings: compact, json.dumps, reversed inner key order.
    envelopes = [
        b'{"method_payload":{"json_payload":"{\\"row\\":{\\"column\\":[{\\"integer\\":\\"1\\"}]}}"}}',
        b'{"method_payload": {"json_payload": "{}"}}',
        b'{ "method_payload" : { "json_payload" : "{\\"affected_rows\\": 2}" } }',
        b'{"method_end": {"ended": true}}',
    ]
    expected = ['{"row":{"column":[{"integer":"1"}]}}', "{}", '{"affected_rows": 2}']
    assert unwrap_envelopes(envelopes) == expected


def test_integer_cells_sent_as_json_numbers() -> None:
    decoder = ExecuteDecoder()
    batches = decoder.feed_responses([
        '{"header":{"column":[{"name":"a","type":"DATA_TYPE_INTEGER"}]}}',
        '{"row":{"column":[{"integer":5}]}}',
        '{"row":{"column":[{"integer":"6"}]}}',
    ])
    table = decoder.unify(batches + decoder.finish())
    assert table.to_pydict() == {"a": [5, 6]}


def test_malformed_input_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        ExecuteDecoder().feed([b"not json"])
    with pytest.raises(ProtocolError):
        ExecuteDecoder().feed_responses(["{bad"])
    decoder = ExecuteDecoder()
    decoder.feed_responses([
        '{"header":{"column":[{"name":"a"},{"name":"b"}]}}',
        '{"row":{"column":[{"null":true}]}}',
    ])
    with pytest.raises(ProtocolError, match="cells"):
        decoder.finish()


# -- round trips ------------------------------------------------------------------------------

_values = {
    "INTEGER": st.integers(INT64_MIN, INT64_MAX),
    "REAL": st.floats(allow_nan=True, allow_infinity=True),
    "TEXT": st.text(),
    "BLOB": st.binary(max_size=40),
}


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[list]]:
    kinds = draw(st.lists(st.sampled_from(sorted(_values)), min_size=1, max_size=5))
    columns = [(f"c{i}", kind) for i, kind in enumerate(kinds)]
    row_values = st.tuples(*[st.one_of(st.none(), _values[kind]) for kind in kinds]).map(list)
    return columns, draw(st.lists(row_values, max_size=12))


@settings(max_examples=150, deadline=None)
@given(data=tables(), spaced=st.booleans(), batch_rows=st.integers(1, 5))
def test_round_trip(data: tuple[list[tuple[str, str]], list[list]], spaced: bool, batch_rows: int) -> None:
    columns, values = data
    separators = None if spaced else COMPACT
    decoder, _, table = decode([header(columns)] + [row(v) for v in values], separators, batch_rows)
    assert table.num_rows == len(values)
    assert_columns(table, {name: [v[i] for v in values] for i, (name, _) in enumerate(columns)})
    assert decoder.conversions == {}


@settings(max_examples=150, deadline=None)
@given(cells=st.lists(st.one_of(st.none(), *(_values.values())), max_size=10), batch_rows=st.integers(1, 4))
def test_mixed_column_never_loses_a_value(cells: list, batch_rows: int) -> None:
    decoder, _, table = decode([header([("m", "UNKNOWN")])] + [row([v]) for v in cells], COMPACT, batch_rows)
    got = table.column("m").to_pylist()
    kind = table.schema.field("m").type
    assert len(got) == len(cells)
    for value, result in zip(cells, got):
        if value is None:
            assert result is None
        elif pa.types.is_large_string(kind):
            if isinstance(value, bytes):
                assert base64.b64decode(result) == value
            elif isinstance(value, float):
                assert same(float(result.replace("Infinity", "inf")), value)
            elif isinstance(value, int):
                assert int(float(result)) == value if "." in result else int(result) == value
            else:
                assert result == value
        elif pa.types.is_float64(kind):
            assert same(float(value), result)
        else:
            assert same(result, value)


# -- bulk feeds (Arrow's JSON reader) against small feeds (orjson) ---------------------------------


def _bulk_values(count: int) -> list[list]:
    specials = [math.nan, math.inf, -math.inf, -0.0, 1e-300, 0.1]
    texts = ["", "é✓ 🚀", 'q"uote \\ back', "line\nbreak", "plain"]
    values = []
    for i in range(count):
        values.append([
            None if i % 7 == 0 else (INT64_MIN + i if i % 2 else INT64_MAX - i),
            None if i % 5 == 0 else texts[i % len(texts)],
            None if i % 11 == 0 else specials[i % len(specials)],
            None if i % 3 == 0 else bytes([i % 256]) * (i % 4),
            # a column whose cells disagree with its header: ints, then text, a blob, a real
            "text" if i == 1200 else b"\x01" if i == 1300 else 2.5 if i == 1400 else i,
        ])
    return values


BULK_COLUMNS = [("i", "INTEGER"), ("t", "TEXT"), ("r", "REAL"), ("b", "BLOB"), ("m", "INTEGER")]


def _decode_in_feeds(envelopes: list[bytes], size: int) -> tuple[ExecuteDecoder, pa.Table]:
    decoder = ExecuteDecoder(batch_rows=500)
    batches = []
    for start in range(0, len(envelopes), size):
        batches += decoder.feed(envelopes[start : start + size])
    batches += decoder.finish()
    assert all(b.num_rows <= 500 for b in batches)
    return decoder, decoder.unify(batches)


@pytest.mark.parametrize("separators", [COMPACT, None], ids=["compact", "json.dumps"])
def test_bulk_feed_agrees_with_small_feeds(separators: tuple[str, str] | None) -> None:
    values = _bulk_values(1500)
    envelopes = [envelope(r, separators) for r in [header(BULK_COLUMNS)] + [row(v) for v in values]]
    bulk_decoder, bulk = _decode_in_feeds(envelopes, len(envelopes))
    small_decoder, small = _decode_in_feeds(envelopes, 10)
    expected = {name: [v[i] for v in values] for i, (name, _) in enumerate(BULK_COLUMNS[:4])}
    expected["m"] = [
        "text" if v[4] == "text" else "AQ==" if v[4] == b"\x01" else "2.5" if v[4] == 2.5 else str(v[4])
        for v in values
    ]
    for table in (bulk, small):
        assert table.schema.field("m").type == pa.large_string()
        assert_columns(table, expected)
    assert bulk.schema == small.schema
    assert bulk_decoder.conversions == small_decoder.conversions and set(bulk_decoder.conversions) == {"m"}


def test_bulk_responses_with_status_raise() -> None:
    responses = [json.dumps(header([("a", "INTEGER")]))] + [json.dumps(row([i])) for i in range(1100)]
    failure = {"status": {"code": 13, "message": "internal", "description": "disk I/O error"}}
    responses.append(json.dumps(failure))
    with pytest.raises(CallError, match="disk I/O error") as caught:
        ExecuteDecoder().feed_responses(responses)
    assert caught.value.code == 13


def test_bulk_responses_the_strict_reader_refuses_still_decode() -> None:
    # Integers as JSON numbers and a numeric enum: Arrow refuses, orjson takes over.
    responses = ['{"header":{"column":[{"name":"a","type":2}]}}']
    responses += [f'{{"row":{{"column":[{{"integer":{i}}}]}}}}' for i in range(1100)]
    responses.append('{"affected_rows": 0}')
    decoder = ExecuteDecoder()
    table = decoder.unify(decoder.feed_responses(responses) + decoder.finish())
    assert table.column("a").to_pylist() == list(range(1100))
    assert table.schema.field("a").type == pa.int64()
    assert decoder.affected_rows == 0


# -- the vectorised row scan against the general path ----------------------------------------


def raw_envelope(response: dict) -> bytes:
    """Compact envelope with raw UTF-8, as orjson (and the local Volt) writes it."""
    return orjson.dumps({"method_payload": {"json_payload": orjson.dumps(response).decode()}})


def decode_both(envelopes: list[bytes], batch_rows: int = 3) -> tuple[ExecuteDecoder, pa.Table, pa.Table]:
    """Decode with the scan allowed for any run of rows, and with the general path only."""
    results = []
    for scan_min_rows in (1, 10**9):
        decoder = ExecuteDecoder(batch_rows=batch_rows, scan_min_rows=scan_min_rows)
        batches = decoder.feed(envelopes) + decoder.finish()
        results.append((decoder, decoder.unify(batches)))
    (scanning, scanned), (general, expected) = results
    assert general.scanned_rows == 0
    assert scanned.schema == expected.schema
    assert_columns(scanned, expected.to_pydict())  # NaN equals NaN here, unlike Table.equals
    assert scanning.conversions == general.conversions
    return scanning, scanned, expected


TRICKY_TEXTS = [
    "", 'a"b', "back\\slash", "\\", '\\"', "é", "ε", "😀", "\n\t\r\x01", "\u2028", 'x"}', '"}]}}"}}',
    '{"integer":"1"}', ',{\\"', "\\u0022", "\\\\u00e9", "line\nbreak", "{", "ends in {", '{"',
]


@pytest.mark.parametrize(
    "encode", [raw_envelope, lambda r: envelope(r, COMPACT)], ids=["utf8", "ascii-escaped"]
)
def test_scan_unescapes_text_like_the_general_path(encode) -> None:
    rows = [[text, index] for index, text in enumerate(TRICKY_TEXTS)]
    envelopes = [encode(header([("t", "TEXT"), ("i", "INTEGER")]))] + [encode(row(r)) for r in rows]
    decoder, table, _ = decode_both(envelopes)
    assert decoder.scanned_rows == len(rows)
    assert table.column("t").to_pylist() == TRICKY_TEXTS


def test_scan_reads_special_reals_blobs_nulls_and_int64_extremes() -> None:
    rows = [
        [math.nan, b"", None, INT64_MIN],
        [math.inf, b"\x00\xff", "x", INT64_MAX],
        [-math.inf, b"abc", None, 0],
        [-0.0, None, "", -1],
        [5e-324, b"\x01" * 40, None, None],
    ]
    columns = [("r", "REAL"), ("b", "BLOB"), ("t", "TEXT"), ("i", "INTEGER")]
    envelopes = [raw_envelope(header(columns))] + [raw_envelope(row(r)) for r in rows]
    decoder, table, _ = decode_both(envelopes)
    assert decoder.scanned_rows == len(rows)
    assert_columns(table, {name: [r[i] for r in rows] for i, (name, _) in enumerate(columns)})


def test_scan_hands_mixed_kinds_to_the_type_policy() -> None:
    cells = [1, "two", 3.5, None, b"\x05", 2**62]
    envelopes = [raw_envelope(header([("m", "INTEGER")]))] + [raw_envelope(row([v])) for v in cells]
    decoder, table, _ = decode_both(envelopes, batch_rows=100)
    assert decoder.scanned_rows == len(cells)
    assert table.column("m").to_pylist() == ["1", "two", "3.5", None, "BQ==", str(2**62)]
    assert "m" in decoder.conversions


def test_scan_declines_a_ragged_row_and_the_general_path_reports_it() -> None:
    envelopes = [raw_envelope(header([("a", "INTEGER"), ("b", "INTEGER")]))]
    envelopes += [raw_envelope(row(values)) for values in ([1, 2], [1], [1, 2, 3], [4, 5])]
    decoder = ExecuteDecoder(scan_min_rows=1)
    with pytest.raises(ProtocolError, match="cells but the header"):
        decoder.feed(envelopes) + decoder.finish()
    assert decoder.scanned_rows == 0


@pytest.mark.parametrize(
    "odd_one",
    [
        b'{"method_payload":{"json_payload":"{\\"row\\":{\\"column\\":[{\\"integer\\": \\"7\\"}]}}"}}',
        b'{"method_payload":{"json_payload":"{\\"row\\":{\\"column\\":[{\\"integer\\":7}]}}"}}',
        b'{"method_payload":{"json_payload":"{\\"row\\":{\\"column\\":[{\\"real\\":\\"7\\"}]}}"}}',
        b'{"method_payload":{"json_payload":"{\\"row\\":{\\"column\\":[{\\"text\\":\\"\\u0037\\"}]}}"}}',
    ],
    ids=["spaced cell", "integer as number", "real as string", "unicode escape"],
)
def test_scan_declines_or_agrees_on_unusual_cells(odd_one: bytes) -> None:
    envelopes = [raw_envelope(header([("x", "UNKNOWN")]))] + [raw_envelope(row([1]))] * 3 + [odd_one]
    _, table, _ = decode_both(envelopes)
    assert table.num_rows == 4


def test_scan_keeps_messages_in_order_around_headers_and_status() -> None:
    head = raw_envelope(header([("i", "INTEGER")]))
    rows = [raw_envelope(row([n])) for n in range(5)]
    decoder, table, _ = decode_both([head, *rows, head, *rows, raw_envelope({"affected_rows": 3})])
    assert decoder.scanned_rows == 10 and decoder.affected_rows == 3
    assert table.column("i").to_pylist() == list(range(5)) * 2
    status = raw_envelope({"status": {"code": 3, "message": "invalidArguments", "description": "bad"}})
    decoder = ExecuteDecoder(scan_min_rows=1)
    with pytest.raises(CallError, match="bad"):
        decoder.feed([head, *rows, status, *rows])
    assert decoder.scanned_rows == 5


def test_scan_reads_a_decrypted_batch_in_place() -> None:
    key, iv = bytes(32), bytes(16)
    envelopes = [raw_envelope(header([("t", "TEXT")]))] + [raw_envelope(row([t])) for t in TRICKY_TEXTS]
    batch = decrypt_joined(key, iv, [encrypt_cbc(key, iv, e) for e in envelopes])
    decoder = ExecuteDecoder(scan_min_rows=1)
    table = decoder.unify(decoder.feed(batch) + decoder.finish())
    assert decoder.scanned_rows == len(TRICKY_TEXTS)
    assert table.column("t").to_pylist() == TRICKY_TEXTS


@settings(max_examples=150, deadline=None)
@given(data=tables(), batch_rows=st.integers(1, 5), utf8=st.booleans())
def test_scan_round_trip_agrees_with_the_general_path(data, batch_rows: int, utf8: bool) -> None:
    columns, values = data
    encode = raw_envelope if utf8 else (lambda r: envelope(r, COMPACT))
    envelopes = [encode(header(columns))] + [encode(row(v)) for v in values]
    decoder, table, _ = decode_both(envelopes, batch_rows)
    assert decoder.scanned_rows == len(values)
    assert_columns(table, {name: [v[i] for v in values] for i, (name, _) in enumerate(columns)})
