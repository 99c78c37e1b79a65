"""Row helpers for plain (non-Arrow) use of Execute responses."""
from __future__ import annotations

import base64
import math
from typing import Any, Iterable

_REALS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def cell_value(cell: dict) -> Any:
    """The Python value of one Execute cell, chosen by the cell's own key."""
    if "integer" in cell:
        return int(cell["integer"])
    if "real" in cell:
        real = cell["real"]
        return _REALS[real] if isinstance(real, str) else float(real)
    if "text" in cell:
        return cell["text"]
    if "blob" in cell:
        return base64.b64decode(cell["blob"])
    return None


def rows_as_dicts(responses: Iterable[dict]) -> list[dict]:
    """Execute responses (header, rows) as a list of ``{column: value}`` dicts."""
    names: list[str] = []
    rows: list[dict] = []
    for response in responses:
        if "header" in response:
            names = [column.get("name", f"column{i}") for i, column in enumerate(response["header"].get("column", []))]
        elif "row" in response:
            cells = response["row"].get("column", [])
            rows.append({name: cell_value(cell) for name, cell in zip(names, cells)})
    return rows
