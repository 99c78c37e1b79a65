"""Render the Volt API .proto sources from the compiled descriptor facts.

The descriptor (`../shared/volt/volt_api_descriptor.json`) is a FileDescriptorSet in
proto3 JSON form. This script writes one .proto file per descriptor file under
`protos/`, so that compiling them again (see `tools/generate_schema.py`) yields the
same descriptors; `tests/schema/test_schema.py` checks that round trip.

    python tools/descriptor_to_proto.py ../shared/volt/volt_api_descriptor.json protos
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

SCALARS = {
    "TYPE_DOUBLE": "double", "TYPE_FLOAT": "float", "TYPE_INT64": "int64",
    "TYPE_UINT64": "uint64", "TYPE_INT32": "int32", "TYPE_FIXED64": "fixed64",
    "TYPE_FIXED32": "fixed32", "TYPE_BOOL": "bool", "TYPE_STRING": "string",
    "TYPE_BYTES": "bytes", "TYPE_UINT32": "uint32", "TYPE_SFIXED32": "sfixed32",
    "TYPE_SFIXED64": "sfixed64", "TYPE_SINT32": "sint32", "TYPE_SINT64": "sint64",
}


def field_type(field: dict) -> str:
    if field["type"] in ("TYPE_MESSAGE", "TYPE_ENUM"):
        return field["typeName"]  # fully qualified with a leading dot: unambiguous
    return SCALARS[field["type"]]


def render_field(field: dict, message: dict, indent: str) -> str:
    nested = {n["name"]: n for n in message.get("nestedType", [])}
    type_name = field.get("typeName", "").rsplit(".", 1)[-1]
    entry = nested.get(type_name)
    if field["label"] == "LABEL_REPEATED" and entry and entry.get("options", {}).get("mapEntry"):
        key, value = entry["field"]
        return f"{indent}map<{field_type(key)}, {field_type(value)}> {field['name']} = {field['number']};"
    label = "repeated " if field["label"] == "LABEL_REPEATED" else ""
    return f"{indent}{label}{field_type(field)} {field['name']} = {field['number']};"


def render_message(message: dict, indent: str = "") -> list[str]:
    lines = [f"{indent}message {message['name']} {{"]
    inner = indent + "  "
    for nested in message.get("nestedType", []):
        if not nested.get("options", {}).get("mapEntry"):
            lines += render_message(nested, inner)
    for enum in message.get("enumType", []):
        lines += render_enum(enum, inner)
    oneofs = message.get("oneofDecl", [])
    emitted_oneofs: set[int] = set()
    fields = message.get("field", [])
    for field in fields:
        index = field.get("oneofIndex")
        if index is None:
            lines.append(render_field(field, message, inner))
        elif index not in emitted_oneofs:
            emitted_oneofs.add(index)
            lines.append(f"{inner}oneof {oneofs[index]['name']} {{")
            for member in fields:
                if member.get("oneofIndex") == index:
                    lines.append(render_field(member, message, inner + "  "))
            lines.append(f"{inner}}}")
    lines.append(f"{indent}}}")
    return lines


def render_enum(enum: dict, indent: str = "") -> list[str]:
    lines = [f"{indent}enum {enum['name']} {{"]
    lines += [f"{indent}  {v['name']} = {v.get('number', 0)};" for v in enum["value"]]
    lines.append(f"{indent}}}")
    return lines


def render_service(service: dict) -> list[str]:
    lines = [f"service {service['name']} {{"]
    for method in service.get("method", []):
        client = "stream " if method.get("clientStreaming") else ""
        server = "stream " if method.get("serverStreaming") else ""
        # An rpc written with a body `{}` compiles to an (empty) options message.
        tail = " {}" if "options" in method else ";"
        lines.append(
            f"  rpc {method['name']}({client}{method['inputType']}) returns ({server}{method['outputType']}){tail}"
        )
    lines.append("}")
    return lines


def render_file(file: dict) -> str:
    lines = [f'syntax = "{file.get("syntax", "proto2")}";', "", f"package {file['package']};", ""]
    lines += [f'import "{dep}";' for dep in file.get("dependency", [])]
    if file.get("dependency"):
        lines.append("")
    for enum in file.get("enumType", []):
        lines += render_enum(enum) + [""]
    for message in file.get("messageType", []):
        lines += render_message(message) + [""]
    for service in file.get("service", []):
        lines += render_service(service) + [""]
    return "\n".join(lines).rstrip() + "\n"


def main(descriptor_path: str, out_dir: str) -> None:
    files = json.loads(Path(descriptor_path).read_text())["file"]
    for file in files:
        target = Path(out_dir) / file["name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("// Volt API schema, rendered from the compiled descriptor facts.\n" + render_file(file))


if __name__ == "__main__":
    main(*sys.argv[1:3])
