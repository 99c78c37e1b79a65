"""The one JSON rule every clear-text part of a frame follows: a JSON object, or a protocol error."""
from __future__ import annotations

import orjson

from volt_data.errors import ProtocolError


def load_json_object(raw: str | bytes, what: str, error: type[ProtocolError] = ProtocolError) -> dict:
    """Parse ``raw`` as a JSON object; anything else raises ``error`` naming ``what``."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise error(f"{what} is not JSON") from exc
    if not isinstance(parsed, dict):
        raise error(f"{what} is not a JSON object")
    return parsed
