"""Parameter binding: literals SQLite reads back exactly, placeholders only in SQL code."""
from __future__ import annotations

import datetime
import math
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from volt_data.notebook.binding import BindingError, bind_parameters, limit_statement, sqlite_literal


def evaluate(literal: str):
    connection = sqlite3.connect(":memory:")
    try:
        return connection.execute(f"SELECT {literal}").fetchone()[0]
    finally:
        connection.close()


@pytest.mark.parametrize(
    "value, expected",
    [
        ("it's", "it's"),
        ("", ""),
        ("'; DROP TABLE x; --", "'; DROP TABLE x; --"),
        ("Zoë 🚀 東京", "Zoë 🚀 東京"),
        (None, None),
        (True, 1),
        (False, 0),
        (-9223372036854775808, -9223372036854775808),
        (0.1, 0.1),
        (5e-324, 5e-324),
        (b"\x00\xff'", b"\x00\xff'"),
        (datetime.datetime(2024, 11, 25, 13, 5, 1), "2024-11-25T13:05:01"),
        (datetime.date(2024, 1, 2), "2024-01-02"),
    ],
)
def test_literal_round_trips_through_sqlite(value, expected):
    assert evaluate(sqlite_literal(value)) == expected


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, object(), "nul\x00byte"])
def test_values_without_a_literal_are_refused(value):
    with pytest.raises(BindingError):
        sqlite_literal(value)


@given(st.text().filter(lambda text: "\x00" not in text))
def test_any_text_survives_quoting(text):
    assert evaluate(sqlite_literal(text)) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_float_survives(number):
    value = evaluate(sqlite_literal(number))
    if number == 0 or 1e-200 < abs(number) < 1e200:
        assert value == number
    else:  # SQLite's own text-to-double conversion may be one ULP off near the limits
        assert abs(value - number) <= math.ulp(number)


def test_injection_attempt_stays_one_value():
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE x (name TEXT)")
    connection.execute("INSERT INTO x VALUES ('a')")
    name = "a'; DROP TABLE x; --"
    sql = bind_parameters("SELECT count(*) FROM x WHERE name = :name", {"name": name})
    assert connection.execute(sql).fetchone()[0] == 0
    assert connection.execute("SELECT count(*) FROM x").fetchone()[0] == 1  # table still there


def test_both_placeholder_styles():
    sql = bind_parameters("SELECT :a, {b}, :c_1", {"a": 1, "b": "x'y", "c_1": None})
    assert sql == "SELECT 1, 'x''y', NULL"


def test_placeholders_in_strings_comments_and_identifiers_are_left_alone():
    sql = (
        "SELECT ':a', \"col:a\", `q:a`, [b:a], 'it''s :a' -- :a here\n"
        ", :a /* :a {a} */ FROM t WHERE x::text = '{a}'"
    )
    bound = bind_parameters(sql, {"a": 7})
    assert bound == sql.replace(", :a /*", ", 7 /*")


def test_double_colon_and_escaped_braces():
    assert bind_parameters("SELECT x::int, '{{', {{literal}}", {}) == "SELECT x::int, '{{', {literal}"


def test_unknown_name_is_a_clear_error():
    with pytest.raises(BindingError, match="'missing'"):
        bind_parameters("SELECT :missing", {})


def test_malformed_brace_is_an_error():
    with pytest.raises(BindingError, match="malformed"):
        bind_parameters("SELECT {a b}", {"a": 1})


def test_unterminated_string_is_kept_for_the_server_to_report():
    assert bind_parameters("SELECT 'open :a", {}) == "SELECT 'open :a"


def test_limit_wraps_as_subquery():
    connection = sqlite3.connect(":memory:")
    statement = limit_statement(
        "WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 100) "
        "SELECT v FROM n -- every row\n;",
        3,
    )
    assert [row[0] for row in connection.execute(statement)] == [1, 2, 3]
