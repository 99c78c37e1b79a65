"""The Volt API schema: generated protobuf modules, the method table and JSON helpers.

``volt_data.schema.tdx`` holds the modules generated from ``protos/`` (see
``tools/generate_schema.py``); this package adds what both the client and the
local Volt need on top of them: :data:`METHODS`, name resolution, request
checks and proto3-JSON conversion.
"""
from __future__ import annotations

from volt_data.schema.json_codec import (
    check_request,
    message_to_json,
    message_to_json_text,
    parse_message,
)
from volt_data.schema.methods import (
    METHODS,
    MethodInfo,
    method_attribute_names,
    resolve_method,
)

__all__ = [
    "METHODS",
    "MethodInfo",
    "check_request",
    "message_to_json",
    "message_to_json_text",
    "method_attribute_names",
    "parse_message",
    "resolve_method",
]
