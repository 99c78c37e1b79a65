"""The Volt method table, built from the service descriptors of the generated modules.

Nothing here is written by hand per method: every ``*_pb2`` module under
``volt_data.schema.tdx`` is imported and its services are read, so the table
follows the .proto sources when they are regenerated. Names are resolved in
the styles people actually type (full path, ``Service/Method``, PascalCase,
camelCase, snake_case) plus the legacy names of the 0.1.14 Python client.
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
import re
from dataclasses import dataclass

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message

from volt_data.errors import RequestError
from volt_data.schema import tdx as _generated

__all__ = [
    "LEGACY_ALIASES",
    "METHODS",
    "MethodInfo",
    "camel_case",
    "method_attribute_names",
    "resolve_method",
    "snake_case",
]


@dataclass(frozen=True)
class MethodInfo:
    """One RPC of the Volt API, as declared in its service descriptor.

    ``path`` is what travels in ``method_invoke.method_name``; the type names are
    fully qualified protobuf names without a leading dot.
    """

    service: str
    name: str
    path: str
    request_type: str
    response_type: str
    client_streaming: bool
    server_streaming: bool

    @property
    def request_class(self) -> type[Message]:
        """The generated protobuf class of the request message."""
        return _message_class(self.request_type)

    @property
    def response_class(self) -> type[Message]:
        """The generated protobuf class of the response message."""
        return _message_class(self.response_type)

    @property
    def kind(self) -> str:
        """``"unary"``, ``"server_streaming"``, ``"client_streaming"`` or ``"bidi"``."""
        if self.client_streaming and self.server_streaming:
            return "bidi"
        if self.client_streaming:
            return "client_streaming"
        if self.server_streaming:
            return "server_streaming"
        return "unary"

    @property
    def is_unary(self) -> bool:
        """True when neither side streams (one request, one response)."""
        return not (self.client_streaming or self.server_streaming)


def _message_class(full_name: str) -> type[Message]:
    descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    return message_factory.GetMessageClass(descriptor)


def _import_generated_modules() -> list:
    """Import every generated ``*_pb2`` module, in a stable (sorted) order."""
    names = sorted(
        info.name
        for info in pkgutil.walk_packages(_generated.__path__, prefix=_generated.__name__ + ".")
        if info.name.endswith("_pb2")
    )
    return [importlib.import_module(name) for name in names]


def _build_method_table() -> dict[str, MethodInfo]:
    table: dict[str, MethodInfo] = {}
    for module in _import_generated_modules():
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                path = f"/{service.full_name}/{method.name}"
                table[path] = MethodInfo(
                    service=service.full_name,
                    name=method.name,
                    path=path,
                    request_type=method.input_type.full_name,
                    response_type=method.output_type.full_name,
                    client_streaming=method.client_streaming,
                    server_streaming=method.server_streaming,
                )
    return table


METHODS: dict[str, MethodInfo] = _build_method_table()
"""Every Volt RPC keyed by its path (``/pkg.Service/Method``)."""

_EXECUTE = "/tdx.volt_api.data.v1.SqliteDatabaseAPI/Execute"

LEGACY_ALIASES: dict[str, str] = {
    "SqlExecute": _EXECUTE,
    "sqlExecute": _EXECUTE,
    "sql_execute": _EXECUTE,
}
"""Names of the 0.1.14 Python client (and its README) that map to current methods."""


def snake_case(name: str) -> str:
    """``GetResourceAncestors`` -> ``get_resource_ancestors``; acronyms stay one word
    (``ImportCSV`` -> ``import_csv``, ``GetDIDRegistryUpdates`` -> ``get_did_registry_updates``)."""
    # An upper-case run followed by a capitalised word splits before its last letter.
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", spaced)
    return spaced.lower()


def camel_case(name: str) -> str:
    """``GetResource`` -> ``getResource`` (only the first letter changes)."""
    return name[:1].lower() + name[1:]


def _build_attribute_names() -> dict[str, MethodInfo]:
    names: dict[str, MethodInfo] = {}

    def add(attribute: str, method: MethodInfo) -> None:
        existing = names.get(attribute)
        if existing is not None and existing is not method:
            raise RuntimeError(f"name {attribute!r} would mean both {existing.path} and {method.path}")
        names[attribute] = method

    for method in METHODS.values():
        for attribute in (method.name, camel_case(method.name), snake_case(method.name)):
            add(attribute, method)
    for alias, path in LEGACY_ALIASES.items():
        add(alias, METHODS[path])
    return names


_ATTRIBUTE_NAMES = _build_attribute_names()


def method_attribute_names() -> dict[str, MethodInfo]:
    """Every Python attribute name a client exposes for a method, mapped to the method.

    Each method appears as PascalCase, camelCase and snake_case, plus the legacy
    aliases; the mapping is a fresh copy the caller may change.
    """
    return dict(_ATTRIBUTE_NAMES)


def _qualified_names() -> dict[str, MethodInfo]:
    """``Service/Method`` and ``pkg.Service/Method`` (with or without a leading slash)."""
    names: dict[str, MethodInfo] = {}
    for method in METHODS.values():
        short_service = method.service.rsplit(".", 1)[-1]
        for key in (f"{short_service}/{method.name}", f"{method.service}/{method.name}"):
            names[key] = method
            names["/" + key] = method
    return names


_QUALIFIED_NAMES = _qualified_names()


def resolve_method(name: str) -> MethodInfo:
    """Find the method a caller means by ``name``.

    Accepts the full path (``/pkg.Service/Method``), ``Service/Method``,
    ``pkg.Service/Method``, the bare method name in PascalCase, camelCase or
    snake_case, and the legacy 0.1.14 names (``SqlExecute`` -> ``Execute``).
    Raises :class:`~volt_data.errors.RequestError` with close matches otherwise.
    """
    if not isinstance(name, str):
        raise RequestError(f"a Volt method name must be a string, got {type(name).__name__}")
    found = METHODS.get(name) or _QUALIFIED_NAMES.get(name) or _ATTRIBUTE_NAMES.get(name)
    if found is not None:
        return found
    raise RequestError(f"unknown Volt method {name!r}; {_suggest(name)}")


def _suggest(name: str) -> str:
    if "/" in name:
        # Compare against every qualified spelling, answer with canonical paths.
        close_keys = difflib.get_close_matches(name, list(_QUALIFIED_NAMES), n=6, cutoff=0.6)
        close = list(dict.fromkeys(_QUALIFIED_NAMES[key].path for key in close_keys))[:3]
    else:
        close = difflib.get_close_matches(name, list(_ATTRIBUTE_NAMES), n=3, cutoff=0.6)
    if not close:
        # Case and underscores are the usual slips; compare without them.
        folded = name.rsplit("/", 1)[-1].replace("_", "").lower()
        close = sorted({m.name for m in METHODS.values() if folded and folded in m.name.lower()})[:3]
    if close:
        return "did you mean " + ", ".join(repr(c) for c in close) + "?"
    return "did you mean one of the names in volt_data.schema.METHODS?"
