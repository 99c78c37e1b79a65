"""Parameter binding for ``%%volt_sql``: ``:name`` and ``{name}`` become SQLite literals.

The Volt's ``Execute`` request takes SQL text, so a cell's Python values must be
rendered into that text. Plain string formatting is how SQL injection happens,
so every value goes through :func:`sqlite_literal`, which produces a correctly
quoted literal (or refuses the value). A small tokenizer finds placeholders only
in SQL code: text inside string literals, quoted identifiers and comments is
left alone, and ``::`` (a cast in other dialects) is never a placeholder.

NaN and infinities have no SQLite literal (SQLite stores NaN as NULL and has no
infinity syntax), so they raise :class:`BindingError` rather than silently
becoming NULL or a string — the analyst decides. Floats are written with
``repr`` (shortest round-trip text); SQLite parses those exactly for ordinary
magnitudes, while near the double limits (|x| < 1e-200 or > 1e200) its own
conversion may land one ULP away.
"""
from __future__ import annotations

import datetime
import decimal
import math
import re
from typing import Any, Mapping

from volt_data.errors import VoltError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class BindingError(VoltError):
    """A placeholder names an unknown variable, or its value has no SQLite literal."""


def sqlite_literal(value: Any) -> str:
    """Render one Python value as a SQLite literal.

    text -> ``'...'`` with ``'`` doubled; int -> digits; float -> ``repr``;
    None -> ``NULL``; bool -> ``1``/``0``; bytes -> ``X'hex'``; date/datetime/time
    -> ISO-8601 text. NaN and infinities raise :class:`BindingError`.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "1" if value else "0"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise BindingError(f"{value!r} has no SQLite literal; pass None for NULL")
        return repr(float(value))
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise BindingError(f"{value!r} has no SQLite literal; pass None for NULL")
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "X'" + bytes(value).hex().upper() + "'"
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return _quote_text(value.isoformat())
    if isinstance(value, str):
        return _quote_text(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and type(value).__module__ == "numpy":
        return sqlite_literal(item())
    raise BindingError(f"cannot bind a value of type {type(value).__name__} as a SQLite literal")


def _quote_text(text: str) -> str:
    if "\x00" in text:
        raise BindingError("text containing a NUL character cannot be a SQLite literal")
    return "'" + text.replace("'", "''") + "'"


def bind_parameters(sql: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``:name`` and ``{name}`` placeholders in SQL code with literals.

    Placeholders inside '...' strings, "..." / `...` / [...] identifiers,
    ``-- line`` and ``/* block */`` comments are not touched, nor is ``::``.
    ``{{`` and ``}}`` stand for literal braces. An unknown name raises
    :class:`BindingError` naming it.
    """
    out: list[str] = []
    index = 0
    length = len(sql)
    while index < length:
        char = sql[index]
        if char in "'\"`":
            end = _closing_quote(sql, index, char)
            out.append(sql[index:end])
            index = end
        elif char == "[":
            end = sql.find("]", index + 1)
            end = length if end < 0 else end + 1
            out.append(sql[index:end])
            index = end
        elif sql.startswith("--", index):
            end = sql.find("\n", index)
            end = length if end < 0 else end
            out.append(sql[index:end])
            index = end
        elif sql.startswith("/*", index):
            end = sql.find("*/", index + 2)
            end = length if end < 0 else end + 2
            out.append(sql[index:end])
            index = end
        elif sql.startswith("::", index):
            out.append("::")
            index += 2
        elif char == ":":
            match = _NAME.match(sql, index + 1)
            if match is None:
                out.append(char)
                index += 1
            else:
                out.append(_lookup(match.group(), namespace))
                index = match.end()
        elif sql.startswith("{{", index) or sql.startswith("}}", index):
            out.append(char)
            index += 2
        elif char == "{":
            match = _NAME.match(sql, index + 1)
            if match is None or not sql.startswith("}", match.end()):
                raise BindingError(f"malformed placeholder at offset {index}: use {{name}}, or {{{{ for a brace")
            out.append(_lookup(match.group(), namespace))
            index = match.end() + 1
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _closing_quote(sql: str, start: int, quote: str) -> int:
    """Index just past the quoted token starting at ``start`` (doubled quotes escape)."""
    index = start + 1
    while True:
        found = sql.find(quote, index)
        if found < 0:
            return len(sql)
        if sql.startswith(quote * 2, found):
            index = found + 2
            continue
        return found + 1


def _lookup(name: str, namespace: Mapping[str, Any]) -> str:
    if name not in namespace:
        raise BindingError(f"SQL placeholder {name!r} names no variable in the notebook")
    try:
        return sqlite_literal(namespace[name])
    except BindingError as exc:
        raise BindingError(f"cannot bind {name!r}: {exc}") from None


def limit_statement(sql: str, limit: int) -> str:
    """Wrap ``sql`` as a subquery limited to ``limit`` rows (for ``--limit``)."""
    body = sql.strip().rstrip(";").rstrip()
    return f"SELECT * FROM ({body}\n) LIMIT {int(limit)}"
