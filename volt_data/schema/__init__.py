"""The Volt API schema: generated protobuf modules, the method table and JSON helpers.

``volt_data.schema.tdx`` holds the modules generated from ``protos/`` (see
``tools/generate_schema.py``); this package adds what both the client and the
local Volt need on top of them: :data:`METHODS`, name resolution, request
checks and proto3-JSON conversion.
"""
from __future__ import annotations

from volt_data.schema.methods import (
    METHODS,
    MethodInfo,
    method_attribute_names,
    resolve_method,
)

__all__ = [
    "METHODS",
    "MethodInfo",
    "method_attribute_names",
    "resolve_method",
]
