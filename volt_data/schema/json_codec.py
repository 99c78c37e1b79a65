"""Requests and responses as proto3 JSON: check what callers send, parse and emit messages.

The Volt speaks protobuf-as-JSON. Clients forward the caller's request object
verbatim, so :func:`check_request` validates it against the request schema
*before* anything is sent (with errors that name the field) but returns the
caller's own spelling. The local Volt parses with :func:`parse_message` and
answers with :func:`message_to_json`, which follows the conventions the
published clients rely on (original field names, 64-bit integers as strings,
no ``status`` without a message).
"""
from __future__ import annotations

import base64
import difflib
import json
import numbers
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from volt_data.errors import RequestError
from volt_data.schema.methods import MethodInfo

__all__ = ["check_request", "message_to_json", "message_to_json_text", "parse_message"]

_STATUS_TYPE = "tdx.volt_api.volt.v1.Status"
_EXECUTE_REQUEST = "tdx.volt_api.data.v1.SqlExecuteRequest"

_F = FieldDescriptor
_INT_RANGES = {
    _F.TYPE_INT32: (-(2**31), 2**31 - 1, "int32"),
    _F.TYPE_SINT32: (-(2**31), 2**31 - 1, "int32"),
    _F.TYPE_SFIXED32: (-(2**31), 2**31 - 1, "int32"),
    _F.TYPE_UINT32: (0, 2**32 - 1, "uint32"),
    _F.TYPE_FIXED32: (0, 2**32 - 1, "uint32"),
    _F.TYPE_INT64: (-(2**63), 2**63 - 1, "int64"),
    _F.TYPE_SINT64: (-(2**63), 2**63 - 1, "int64"),
    _F.TYPE_SFIXED64: (-(2**63), 2**63 - 1, "int64"),
    _F.TYPE_UINT64: (0, 2**64 - 1, "uint64"),
    _F.TYPE_FIXED64: (0, 2**64 - 1, "uint64"),
}
_FLOAT_WORDS = {"NaN", "Infinity", "-Infinity"}
_INTEGER_TEXT = re.compile(r"-?\d+")
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _RequestChecker:
    """Walks a JSON-like value against a message descriptor.

    Returns a copy in the caller's own field-name style, with Python ``bytes``
    turned into base64 text and numpy-style numbers into plain ``int``/``float``
    so that ``json.dumps`` accepts the result.
    """

    def __init__(self, *, ignore_unknown: bool = False) -> None:
        self.ignore_unknown = ignore_unknown

    def fail(self, message: str, path: str) -> RequestError:
        return RequestError(message, field=path or None)

    def message(self, descriptor: Descriptor, value: Any, path: str) -> dict:
        if not isinstance(value, Mapping):
            where = f"{path}: " if path else ""
            kind = type(value).__name__
            problem = f"must be a JSON object (dict), got {kind} {_show(value)}"
            raise self.fail(f"{where}{descriptor.name} {problem}", path)
        fields = _fields_by_json_key(descriptor)
        result: dict = {}
        seen: dict[str, str] = {}  # proto field name -> key used by the caller
        oneofs_set: dict[str, str] = {}  # oneof name -> key used by the caller
        for key, item in value.items():
            if not isinstance(key, str):
                raise self.fail(f"{descriptor.name}: field names must be strings, got {_show(key)}", path)
            field = fields.get(key)
            where = _join(path, key)
            if field is None:
                if self.ignore_unknown:
                    continue
                raise self.fail(_unknown_field_message(descriptor, key, path), where)
            if field.name in seen:
                first = seen[field.name]
                problem = f"field '{field.name}' given twice ('{first}', '{key}')"
                raise self.fail(f"{descriptor.name}: {problem}", where)
            seen[field.name] = key
            oneof = field.containing_oneof
            if oneof is not None and item is not None:
                if oneof.name in oneofs_set:
                    raise self.fail(
                        f"{descriptor.name}: '{oneofs_set[oneof.name]}' and '{key}' are both members of "
                        f"oneof '{oneof.name}'; set only one",
                        where,
                    )
                oneofs_set[oneof.name] = key
            # proto3 JSON reads null as "not set".
            result[key] = None if item is None else self.field(descriptor, field, item, where)
        return result

    def field(self, owner: Descriptor, field: FieldDescriptor, value: Any, path: str) -> Any:
        if _is_map(field):
            return self.map(owner, field, value, path)
        if field.is_repeated:
            if not isinstance(value, (list, tuple)):
                raise self.bad(owner, field.name, path, f"expected a list, got {_show(value)}")
            return [self.single(owner, field, item, f"{path}[{i}]") for i, item in enumerate(value)]
        return self.single(owner, field, value, path)

    def map(self, owner: Descriptor, field: FieldDescriptor, value: Any, path: str) -> dict:
        if not isinstance(value, Mapping):
            raise self.bad(owner, field.name, path, f"expected an object (dict), got {_show(value)}")
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        result = {}
        for key, item in value.items():
            where = f"{path}[{key!r}]"
            checked_key = key
            if key_field.type == _F.TYPE_BOOL:
                if key not in (True, False, "true", "false"):
                    problem = f"map key must be true or false, got {_show(key)}"
                    raise self.bad(owner, field.name, where, problem)
            elif key_field.type == _F.TYPE_STRING:
                if not isinstance(key, str):
                    raise self.bad(owner, field.name, where, f"map key must be a string, got {_show(key)}")
            else:
                checked_key = self.integer(owner, key_field, key, where, label=f"{field.name} key")
            result[checked_key] = self.single(owner, value_field, item, where, label=field.name)
        return result

    def single(
        self, owner: Descriptor, field: FieldDescriptor, value: Any, path: str, label: str = ""
    ) -> Any:
        label = label or field.name
        kind = field.type
        if value is None:
            raise self.bad(owner, label, path, "null is not allowed here")
        if kind == _F.TYPE_MESSAGE:
            return self.message(field.message_type, value, path)
        if kind == _F.TYPE_STRING:
            if not isinstance(value, str):
                raise self.wrong(owner, label, "a string", value, path)
            return value
        if kind == _F.TYPE_BOOL:
            if not isinstance(value, bool):
                raise self.wrong(owner, label, "true or false", value, path)
            return value
        if kind in _INT_RANGES:
            return self.integer(owner, field, value, path, label=label)
        if kind in (_F.TYPE_DOUBLE, _F.TYPE_FLOAT):
            return self.number(owner, label, value, path)
        if kind == _F.TYPE_ENUM:
            return self.enum(owner, field, value, path, label=label)
        if kind == _F.TYPE_BYTES:
            return self.bytes_value(owner, label, value, path)
        raise self.bad(owner, label, path, f"unsupported field type {kind}")  # pragma: no cover

    def bad(self, owner: Descriptor, label: str, path: str, problem: str) -> RequestError:
        """``Type.field: problem``, plus the request path when it says more."""
        where = "" if path in ("", label) else f" (at '{path}')"
        return self.fail(f"{owner.name}.{label}: {problem}{where}", path)

    def wrong(self, owner: Descriptor, label: str, expected: str, value: Any, path: str) -> RequestError:
        return self.bad(owner, label, path, f"expected {expected}, got {_show(value)}")

    def integer(self, owner: Descriptor, field: FieldDescriptor, value: Any, path: str, label: str) -> Any:
        low, high, type_name = _INT_RANGES[field.type]
        if isinstance(value, bool):
            raise self.wrong(owner, label, "an integer", value, path)
        if isinstance(value, str):
            if not _INTEGER_TEXT.fullmatch(value):
                raise self.wrong(owner, label, "an integer", value, path)
            number = int(value)
        elif isinstance(value, numbers.Integral):
            number = value = int(value)
        else:
            raise self.wrong(owner, label, "an integer", value, path)
        if not low <= number <= high:
            raise self.bad(owner, label, path, f"{number} is out of range for {type_name}")
        return value

    def number(self, owner: Descriptor, label: str, value: Any, path: str) -> Any:
        if isinstance(value, bool):
            raise self.wrong(owner, label, "a number", value, path)
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            return float(value)
        if isinstance(value, str):
            if value in _FLOAT_WORDS:
                return value
            try:
                float(value)
            except ValueError:
                pass
            else:
                return value
        raise self.wrong(owner, label, "a number", value, path)

    def enum(self, owner: Descriptor, field: FieldDescriptor, value: Any, path: str, label: str) -> Any:
        enum = field.enum_type
        if isinstance(value, str):
            if value in enum.values_by_name:
                return value
            names = ", ".join(list(enum.values_by_name)[:6])
            raise self.bad(owner, label, path, f"{value!r} is not a {enum.name} value (one of {names})")
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            number = int(value)
            if -(2**31) <= number < 2**31:
                return number
        raise self.wrong(owner, label, f"a {enum.name} name or number", value, path)

    def bytes_value(self, owner: Descriptor, label: str, value: Any, path: str) -> str:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return base64.b64encode(bytes(value)).decode("ascii")
        if isinstance(value, str):
            body = value.rstrip("=")
            if _BASE64_TEXT.fullmatch(value) and len(body) % 4 != 1:
                return value
            raise self.wrong(owner, label, "base64 text or Python bytes", value, path)
        raise self.wrong(owner, label, "base64 text or Python bytes", value, path)


def _unknown_field_message(descriptor: Descriptor, key: str, path: str) -> str:
    names = [f.name for f in descriptor.fields]
    close = difflib.get_close_matches(key, names + [f.json_name for f in descriptor.fields], n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; its fields are: {', '.join(names) or '(none)'}"
    where = f" (at '{path}')" if path else ""
    return f"{descriptor.name} has no field '{key}'{where}{hint}"


@lru_cache(maxsize=None)
def _fields_by_json_key(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    """Proto field names and lowerCamelCase json names, both accepted by proto3 JSON."""
    fields: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        fields[field.json_name] = field
    for field in descriptor.fields:
        fields[field.name] = field
    return fields


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.is_repeated
        and field.type == _F.TYPE_MESSAGE
        and field.message_type.GetOptions().map_entry
    )


def _legacy_execute_start(descriptor: Descriptor, request: Mapping) -> Descriptor | None:
    """The 0.1.14 client sent ``SqlExecuteStart`` fields flat, before ``payload`` became a oneof.

    Returns the ``SqlExecuteStart`` descriptor when ``request`` is in that form.
    """
    if descriptor.full_name != _EXECUTE_REQUEST or not request:
        return None
    start = descriptor.fields_by_name["start"].message_type
    start_keys = _fields_by_json_key(start)
    if all(isinstance(key, str) and key in start_keys for key in request):
        return start
    return None


def check_request(method: MethodInfo, request: dict | None) -> dict:
    """Validate a caller's request for ``method`` before anything is sent.

    Accepts proto field names and lowerCamelCase json names, 64-bit integers
    as ``int`` or decimal ``str``, enums as name or number, and Python
    ``bytes`` for bytes fields (converted to standard base64). The legacy flat
    ``Execute`` request (``SqlExecuteStart`` fields at top level) is wrapped as
    ``{"start": ...}``. Returns the JSON-ready dict to send, in the caller's
    own field-name style; raises :class:`~volt_data.errors.RequestError` naming
    the bad field otherwise.
    """
    if request is None:
        return {}
    descriptor = method.request_class.DESCRIPTOR
    if not isinstance(request, Mapping):
        kind = type(request).__name__
        expected = f"a dict of {descriptor.name} fields"
        raise RequestError(f"{method.name}: the request must be {expected}, got {kind}")
    checker = _RequestChecker()
    start = _legacy_execute_start(descriptor, request)
    if start is not None:
        return {"start": checker.message(start, request, "")}
    return checker.message(descriptor, request, "")


def parse_message(
    cls: type[Message], data: str | bytes | dict, *, ignore_unknown: bool = False
) -> Message:
    """Parse proto3 JSON (text or an already decoded dict) into a ``cls`` message.

    This is how the local Volt reads ``json_request``/``json_payload`` strings,
    so it accepts everything a proto3 JSON parser does (both field-name forms,
    numbers as strings, unpadded or URL-safe base64) and the legacy flat
    ``Execute`` request. Errors raise :class:`~volt_data.errors.RequestError`
    naming the field.
    """
    descriptor = cls.DESCRIPTOR
    if isinstance(data, (str, bytes, bytearray)):
        try:
            data = json.loads(data) if data else {}
        except (ValueError, UnicodeDecodeError) as error:
            raise RequestError(f"{descriptor.name}: not valid JSON ({error})") from None
    if not isinstance(data, Mapping):
        raise RequestError(f"{descriptor.name} must be a JSON object, got {type(data).__name__}")
    checker = _RequestChecker(ignore_unknown=ignore_unknown)
    start = _legacy_execute_start(descriptor, data)
    if start is not None:
        data = {"start": checker.message(start, data, "")}
    else:
        data = checker.message(descriptor, data, "")
    message = cls()
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=ignore_unknown)
    except json_format.ParseError as error:
        # The checker above catches what callers get wrong; this is a backstop.
        raise RequestError(f"{descriptor.name}: {error}") from None
    return message


@lru_cache(maxsize=None)
def _status_paths(descriptor: Descriptor) -> tuple[tuple[str, bool, bool], ...]:
    """Fields of ``descriptor`` through which a ``Status`` can be reached.

    Each entry is ``(field name, is the Status itself, is repeated)``; message
    types that cannot hold a Status (rows, cells) are skipped entirely, which
    keeps the cleanup cheap on large result streams.
    """
    found = []
    for field in descriptor.fields:
        if field.type != _F.TYPE_MESSAGE or _is_map(field):
            continue
        repeated = field.is_repeated
        if field.message_type.full_name == _STATUS_TYPE:
            found.append((field.name, True, repeated))
        elif _can_hold_status(field.message_type, frozenset()):
            found.append((field.name, False, repeated))
    return tuple(found)


def _can_hold_status(descriptor: Descriptor, visiting: frozenset) -> bool:
    if descriptor.full_name in visiting:
        return False
    visiting = visiting | {descriptor.full_name}
    for field in descriptor.fields:
        if field.type == _F.TYPE_MESSAGE and not _is_map(field):
            if field.message_type.full_name == _STATUS_TYPE:
                return True
            if _can_hold_status(field.message_type, visiting):
                return True
    return False


def _drop_empty_status(descriptor: Descriptor, data: dict) -> None:
    for name, is_status, repeated in _status_paths(descriptor):
        value = data.get(name)
        if value is None:
            continue
        if is_status:
            if not repeated and not value.get("message"):
                del data[name]
            continue
        field = descriptor.fields_by_name[name]
        for item in value if repeated else [value]:
            _drop_empty_status(field.message_type, item)


def message_to_json(message: Message) -> dict:
    """Proto3 canonical JSON of ``message`` as the published clients expect it.

    Original (snake_case) field names, 64-bit integers as strings, enums as
    names, bytes as standard base64, defaults omitted (a set oneof member is
    kept, e.g. ``{"integer": "0"}``). A ``status`` without a message is
    dropped: the v1 client treats the mere presence of ``message`` as failure,
    and a status with no message means success.
    """
    data = json_format.MessageToDict(message, preserving_proto_field_name=True)
    _drop_empty_status(message.DESCRIPTOR, data)
    return data


def message_to_json_text(message: Message) -> str:
    """Compact JSON text of :func:`message_to_json` (what goes in ``json_payload``)."""
    return json.dumps(message_to_json(message), separators=(",", ":"), ensure_ascii=False)
