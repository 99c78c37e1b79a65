"""The column-wise row encoder gives exactly the text of encoding each cell on its own."""
from __future__ import annotations

import math
import random
import struct

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from volt_data.local.services.rows import _reals_as_repr, column_types, encode_cell, row_encoder


def reference(rows) -> list[str]:
    """Row by row, cell by cell: the definition the fast encoder must match."""
    return ['{"row":{"column":[' + ",".join(map(encode_cell, row)) + "]}}" if row else '{"row":{}}'
            for row in rows]


def encoded(rows, width: int) -> list[str]:
    return row_encoder(column_types(rows, width))(rows)


VALUE = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.binary(max_size=40),
)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=6).flatmap(
    lambda width: st.lists(st.tuples(*[VALUE] * width), max_size=25).map(lambda rows: (width, rows))))
def test_any_mix_of_values_matches_the_cell_by_cell_text(case):
    width, rows = case
    assert encoded(rows, width) == reference(rows)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50))
def test_columns_of_one_type_match(reals):
    rows = [(i, f"text {i}", v, bytes([i % 256]) * (i % 5), None) for i, v in enumerate(reals)]
    assert encoded(rows, 5) == reference(rows)


def test_typed_columns_of_a_realistic_batch():
    rng = random.Random(3)
    rows = [(i, f"label-{i % 1000}", rng.random() * 1000, None if i % 3 else f"note {i}",
             (i * 2654435761) % 2**63) for i in range(3000)]
    encode = row_encoder(column_types(rows[:1000], 5))
    assert encode(rows[:1000]) + encode(rows[1000:]) == reference(rows)
    assert encode([]) == []
    assert row_encoder([])([(), ()]) == ['{"row":{}}', '{"row":{}}']
    nulls = [(None, None)] * 3
    assert row_encoder(column_types(rows, 2))(nulls) == reference(nulls)


def test_reals_in_range_print_as_repr():
    rng = random.Random(9)
    values = [rng.random() * 10 ** rng.randrange(-4, 16) for _ in range(50_000)]
    values += [struct.unpack("d", rng.randbytes(8))[0] for _ in range(50_000)]
    values = [v for v in values if math.isfinite(v) and 1e-4 <= abs(v) < 1e16]
    values += [0.0, -0.0, 1e-4, -1e-4, math.nextafter(1e16, 0), 123.0, 0.1, 1 / 3, 2.0**52, 1e15]
    assert _reals_as_repr(tuple(values)) == [repr(v) for v in values]


@pytest.mark.parametrize("outside", [1e16, 9.9e-5, 5e-324, float("inf"), float("-inf"), float("nan"), -1e300])
def test_reals_outside_the_range_fall_back_to_repr(outside):
    column = (1.5, outside, 2.5)
    assert _reals_as_repr(column) is None
    rows = [(v,) for v in column]
    assert encoded(rows, 1) == reference(rows)


def test_orjson_and_repr_agree_on_the_form_checked():
    # The fast path relies on orjson printing in-range floats positionally with a '.'.
    assert orjson.dumps([123.0, 0.0001, 1e15]) == b"[123.0,0.0001,1000000000000000.0]"
