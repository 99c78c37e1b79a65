"""The schema package: generated modules match the descriptor facts, the method table
matches api_methods.tsv, names resolve in every style, requests are checked before
sending and responses are emitted as the published clients expect."""
from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from google.protobuf import descriptor_pb2, json_format

from volt_data.errors import RequestError, VoltError
from volt_data.schema import (
    METHODS,
    MethodInfo,
    check_request,
    message_to_json,
    message_to_json_text,
    method_attribute_names,
    parse_message,
    resolve_method,
)
from volt_data.schema.methods import _import_generated_modules
from volt_data.schema.tdx.volt_api.data.v1 import sqlite_database_api_pb2, sqlite_pb2
from volt_data.schema.tdx.volt_api.volt.v1 import volt_api_pb2

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "volt"
GENERATED = ROOT / "volt_data" / "schema" / "tdx"
EXECUTE = "/tdx.volt_api.data.v1.SqliteDatabaseAPI/Execute"
GET_RESOURCE = "/tdx.volt_api.volt.v1.VoltAPI/GetResource"


def shared_file(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"shared schema facts not found at {path} (the shared folder sits beside the repo)")
    return path


def without_json_names(value):
    """The facts carry protoc's ``jsonName``; ``CopyToProto`` leaves it out."""
    if isinstance(value, dict):
        return {key: without_json_names(item) for key, item in value.items() if key != "jsonName"}
    if isinstance(value, list):
        return [without_json_names(item) for item in value]
    return value


# --- generated code ----------------------------------------------------------------------


def test_every_generated_file_descriptor_equals_the_facts() -> None:
    facts = json.loads(shared_file("volt_api_descriptor.json").read_text())["file"]
    expected = {entry["name"]: without_json_names(entry) for entry in facts}
    generated = {}
    for module in _import_generated_modules():
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        generated[proto.name] = json_format.MessageToDict(proto)
    assert sorted(generated) == sorted(expected)
    assert len(generated) == 19
    for name, facts_entry in expected.items():
        assert generated[name] == facts_entry, name


def test_regenerating_yields_the_committed_modules(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools is needed to regenerate the schema")
    spec = importlib.util.spec_from_file_location("generate_schema", ROOT / "tools" / "generate_schema.py")
    generate_schema = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate_schema)
    target = tmp_path / "tdx"
    generate_schema.generate(target)
    fresh = {p.relative_to(target): p.read_bytes() for p in target.rglob("*.py")}
    committed = {p.relative_to(GENERATED): p.read_bytes() for p in GENERATED.rglob("*.py")}
    assert sorted(fresh) == sorted(committed)
    for relative, content in fresh.items():
        assert committed[relative] == content, relative


# --- method table --------------------------------------------------------------------------


def test_method_table_matches_api_methods_tsv() -> None:
    with shared_file("api_methods.tsv").open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) == 92
    assert len(METHODS) == 92
    for row in rows:
        path = f"/{row['service_full_name']}/{row['method']}"
        method = METHODS[path]
        assert method.path == path
        assert method.service == row["service_full_name"]
        assert method.name == row["method"]
        assert method.request_type == row["request_type"]
        assert method.response_type == row["response_type"]
        assert method.client_streaming == (row["client_streaming"] == "true")
        assert method.server_streaming == (row["server_streaming"] == "true")


def test_method_info_classes_and_kinds() -> None:
    execute = METHODS[EXECUTE]
    assert execute.request_class is sqlite_database_api_pb2.SqlExecuteRequest
    assert execute.response_class is sqlite_database_api_pb2.SqlExecuteResponse
    assert execute.kind == "bidi" and not execute.is_unary
    get_resource = METHODS[GET_RESOURCE]
    assert get_resource.request_class is volt_api_pb2.GetResourceRequest
    assert get_resource.kind == "unary" and get_resource.is_unary
    kinds = {method.kind for method in METHODS.values()}
    assert kinds <= {"unary", "server_streaming", "client_streaming", "bidi"}
    assert {"unary", "bidi"} <= kinds
    for method in METHODS.values():
        assert method.request_class.DESCRIPTOR.full_name == method.request_type
        assert method.response_class.DESCRIPTOR.full_name == method.response_type


@pytest.mark.parametrize(
    "name",
    [
        GET_RESOURCE,
        "tdx.volt_api.volt.v1.VoltAPI/GetResource",
        "/tdx.volt_api.volt.v1.VoltAPI/GetResource".lstrip("/"),
        "VoltAPI/GetResource",
        "GetResource",
        "getResource",
        "get_resource",
    ],
)
def test_resolve_method_in_every_style(name: str) -> None:
    assert resolve_method(name) is METHODS[GET_RESOURCE]


@pytest.mark.parametrize("name", ["SqlExecute", "sqlExecute", "sql_execute", "Execute", "execute"])
def test_legacy_execute_names_resolve_to_sqlite_execute(name: str) -> None:
    assert resolve_method(name) is METHODS[EXECUTE]


def test_unknown_method_error_suggests_close_names() -> None:
    with pytest.raises(RequestError) as caught:
        resolve_method("getResourc")
    message = str(caught.value)
    assert message.startswith("unknown Volt method 'getResourc'; did you mean ")
    assert "'getResource'" in message
    assert caught.value.field is None
    assert isinstance(caught.value, VoltError)
    with pytest.raises(RequestError, match=r"did you mean '/tdx\.volt_api\.volt\.v1\.VoltAPI/GetResource'"):
        resolve_method("VoltAPI/GetResourc")


def test_attribute_names_cover_every_style_and_are_unique() -> None:
    names = method_attribute_names()
    expected = {
        "GetResourceAncestors": "GetResourceAncestors",
        "getResourceAncestors": "GetResourceAncestors",
        "get_resource_ancestors": "GetResourceAncestors",
        "ImportCSV": "ImportCSV",
        "importCSV": "ImportCSV",
        "import_csv": "ImportCSV",
        "save_http_rest_api_server": "SaveHttpRestApiServer",
        "get_did_registry_updates": "GetDIDRegistryUpdates",
        "sql_execute": "Execute",
        "sqlExecute": "Execute",
    }
    for attribute, method_name in expected.items():
        assert names[attribute].name == method_name, attribute
    # Each method is reachable by its three spellings, and no spelling means two methods.
    owners: dict[str, set[str]] = {}
    for method in METHODS.values():
        spellings = [a for a, m in names.items() if m is method]
        assert method.name in spellings
        for attribute in spellings:
            owners.setdefault(attribute, set()).add(method.path)
    assert all(len(paths) == 1 for paths in owners.values())
    assert all(attribute.isidentifier() for attribute in names)
    assert len({m.path for m in names.values()}) == 92
    for attribute, method in names.items():
        assert resolve_method(attribute) is method


# --- check_request ---------------------------------------------------------------------------


def test_good_requests_pass_unchanged() -> None:
    request = {"resource_id": "abc", "include_attributes": True}
    assert check_request(METHODS[GET_RESOURCE], request) == request
    execute = {"start": {"database_id": "db", "statement": "SELECT 1", "page_size": 50, "transaction": False}}
    assert check_request(METHODS[EXECUTE], execute) == execute
    assert check_request(METHODS[EXECUTE], {"next": {}}) == {"next": {}}
    assert check_request(METHODS[GET_RESOURCE], None) == {}
    assert check_request(METHODS[GET_RESOURCE], {}) == {}


def test_camel_case_names_int64_strings_and_enum_forms_are_accepted() -> None:
    assert check_request(METHODS[GET_RESOURCE], {"resourceId": "x"}) == {"resourceId": "x"}
    get_resources = resolve_method("GetResources")
    for since in (1700000000000, "1700000000000", "18446744073709551615"):
        assert check_request(get_resources, {"modified_since": since}) == {"modified_since": since}
    get_access = resolve_method("GetAccess")
    permit = {"decision": "POLICY_DECISION_PERMIT"}
    assert check_request(get_access, permit) == permit
    assert check_request(get_access, {"decision": 1}) == {"decision": 1}
    expected = "GetAccessRequest.decision: 'PERMIT' is not a PolicyDecision"
    with pytest.raises(RequestError, match=expected) as caught:
        check_request(get_access, {"decision": "PERMIT"})
    assert caught.value.field == "decision"


def test_unknown_field_names_the_field_and_the_type() -> None:
    with pytest.raises(RequestError) as caught:
        check_request(METHODS[GET_RESOURCE], {"resourceIdd": "x"})
    assert str(caught.value).startswith("GetResourceRequest has no field 'resourceIdd'")
    assert caught.value.field == "resourceIdd"
    with pytest.raises(RequestError) as caught:
        check_request(METHODS[EXECUTE], {"start": {"statment": "SELECT 1"}})
    assert "SqlExecuteStart has no field 'statment'" in str(caught.value)
    assert caught.value.field == "start.statment"


def test_wrong_type_names_the_field_path_and_the_type() -> None:
    with pytest.raises(RequestError) as caught:
        check_request(METHODS[EXECUTE], {"start": {"database_id": "db", "page_size": "ten"}})
    assert str(caught.value).startswith("SqlExecuteStart.page_size: expected an integer, got 'ten'")
    assert caught.value.field == "start.page_size"
    with pytest.raises(RequestError, match="GetResourceRequest.include_attributes: expected true or false"):
        check_request(METHODS[GET_RESOURCE], {"include_attributes": "yes"})
    with pytest.raises(RequestError, match="out of range for uint32"):
        check_request(METHODS[EXECUTE], {"start": {"page_size": -1}})
    with pytest.raises(RequestError, match="oneof 'payload'"):
        check_request(METHODS[EXECUTE], {"start": {}, "end": {}})


def test_lists_and_maps_are_checked_element_by_element() -> None:
    bulk = resolve_method("BulkUpdate")
    statements = {"statement": ["INSERT 1", "INSERT 2"]}
    assert check_request(bulk, statements) == statements
    with pytest.raises(RequestError, match="SqlBulkUpdateRequest.statement: expected a list") as caught:
        check_request(bulk, {"statement": "INSERT 1"})
    assert caught.value.field == "statement"
    with pytest.raises(RequestError, match="expected a string, got 2") as caught:
        check_request(bulk, {"statement": ["INSERT 1", 2]})
    assert caught.value.field == "statement[1]"
    parameters = {"start": {"parameter": {"id": {"integer": 5}, "pic": {"bytes": b"\x01"}}}}
    assert check_request(METHODS[EXECUTE], parameters) == {
        "start": {"parameter": {"id": {"integer": 5}, "pic": {"bytes": "AQ=="}}}
    }
    with pytest.raises(RequestError, match="AttributeValue has no field 'integr'") as caught:
        check_request(METHODS[EXECUTE], {"start": {"parameter": {"id": {"integr": 5}}}})
    assert caught.value.field == "start.parameter['id'].integr"


@given(
    since=st.integers(min_value=0, max_value=2**64 - 1),
    as_text=st.booleans(),
    chunk=st.binary(max_size=64),
)
def test_checked_values_survive_proto3_parsing(since: int, as_text: bool, chunk: bytes) -> None:
    """Whatever check_request lets through, a proto3 JSON parser reads back exactly."""
    value = str(since) if as_text else since
    sent = check_request(resolve_method("GetResources"), {"modifiedSince": value})
    parsed = parse_message(volt_api_pb2.GetResourcesRequest, json.dumps(sent))
    assert parsed.modified_since == since
    published = check_request(resolve_method("PublishWire"), {"wire_id": "w", "chunk": chunk})
    assert parse_message(resolve_method("PublishWire").request_class, json.dumps(published)).chunk == chunk


@pytest.mark.parametrize("request_value", [[("resource_id", "x")], "resource_id=x", 3])
def test_a_request_that_is_not_a_dict_is_refused(request_value) -> None:
    with pytest.raises(RequestError, match="GetResource: the request must be a dict of GetResourceRequest"):
        check_request(METHODS[GET_RESOURCE], request_value)


def test_bytes_values_become_standard_base64() -> None:
    publish = resolve_method("PublishWire")
    original = {"wire_id": "w", "chunk": b"\x00\xff hello"}
    sent = check_request(publish, original)
    assert sent == {"wire_id": "w", "chunk": "AP8gaGVsbG8="}
    assert original["chunk"] == b"\x00\xff hello"  # the caller's dict is not modified
    assert json.loads(json.dumps(sent)) == sent
    assert check_request(publish, {"chunk": "aGVsbG8="}) == {"chunk": "aGVsbG8="}
    with pytest.raises(RequestError, match="PublishWireRequest.chunk: expected base64 text or Python bytes"):
        check_request(publish, {"chunk": "hello"})  # 5 characters: not base64


def test_legacy_flat_execute_request_is_wrapped_as_start() -> None:
    flat = {"database_id": "db", "statement": "SELECT 1", "page_size": 10}
    assert check_request(METHODS[EXECUTE], flat) == {"start": flat}
    assert check_request(METHODS[EXECUTE], {"databaseId": "db"}) == {"start": {"databaseId": "db"}}
    with pytest.raises(RequestError, match="SqlExecuteStart.page_size: expected an integer") as caught:
        check_request(METHODS[EXECUTE], {"database_id": "db", "page_size": "ten"})
    assert caught.value.field == "page_size"


def test_checked_requests_parse_as_their_message() -> None:
    sent = check_request(METHODS[EXECUTE], {"database_id": "db", "statement": "SELECT 1", "page_size": 10})
    message = parse_message(sqlite_database_api_pb2.SqlExecuteRequest, json.dumps(sent))
    assert message.WhichOneof("payload") == "start"
    assert message.start.page_size == 10


# --- parse_message ------------------------------------------------------------------------------


def test_parse_message_accepts_proto3_json_forms() -> None:
    cls = volt_api_pb2.GetResourceRequest
    assert parse_message(cls, '{"resourceId": "x", "include_attributes": true}').resource_id == "x"
    assert parse_message(cls, b'{"resource_id": "y"}').resource_id == "y"
    assert parse_message(cls, {"resource_id": "z"}).resource_id == "z"
    assert parse_message(cls, "").resource_id == ""
    publish = resolve_method("PublishWire").request_class
    assert parse_message(publish, '{"chunk": "aGVsbG8"}').chunk == b"hello"  # unpadded base64
    flat = '{"database_id": "db", "statement": "s"}'
    legacy = parse_message(sqlite_database_api_pb2.SqlExecuteRequest, flat)
    assert legacy.start.database_id == "db" and legacy.start.statement == "s"


def test_parse_message_errors_name_the_field() -> None:
    cls = volt_api_pb2.GetResourceRequest
    with pytest.raises(RequestError) as caught:
        parse_message(cls, '{"resourceIdd": "x"}')
    assert caught.value.field == "resourceIdd"
    assert "GetResourceRequest has no field 'resourceIdd'" in str(caught.value)
    lenient = parse_message(cls, '{"resourceIdd": "x", "resource_id": "a"}', ignore_unknown=True)
    assert lenient.resource_id == "a"
    with pytest.raises(RequestError, match="not valid JSON"):
        parse_message(cls, "{")
    with pytest.raises(RequestError, match="must be a JSON object"):
        parse_message(cls, "[1]")


# --- message_to_json ----------------------------------------------------------------------------


def test_message_to_json_uses_the_clients_conventions() -> None:
    header = sqlite_database_api_pb2.SqlExecuteResponse()
    header.header.column.add(name="id", type=sqlite_pb2.DATA_TYPE_INTEGER)
    assert message_to_json(header) == {"header": {"column": [{"name": "id", "type": "DATA_TYPE_INTEGER"}]}}

    row = sqlite_database_api_pb2.SqlExecuteResponse()
    row.row.column.add(integer=9007199254740993)
    row.row.column.add(integer=0)  # oneof member set to its default: kept
    row.row.column.add(text="")
    row.row.column.add(blob=b"\x00\xff")
    row.row.column.add(null=True)
    assert message_to_json(row) == {
        "row": {
            "column": [
                {"integer": "9007199254740993"},
                {"integer": "0"},
                {"text": ""},
                {"blob": "AP8="},
                {"null": True},
            ]
        }
    }
    resource = volt_api_pb2.GetResourceResponse()
    resource.resource.id = "abc"
    resource.resource.size = 1234
    assert message_to_json(resource)["resource"]["size"] == "1234"


def test_status_without_message_is_dropped_and_errors_are_kept() -> None:
    ok = sqlite_database_api_pb2.SqlExecuteResponse()
    ok.status.code = 0
    ok.status.SetInParent()
    assert message_to_json(ok) == {}
    coded_but_silent = volt_api_pb2.GetResourceResponse()
    coded_but_silent.status.code = 3
    assert "status" not in message_to_json(coded_but_silent)
    failed = sqlite_database_api_pb2.SqlExecuteResponse()
    failed.status.code = 3
    failed.status.message = "invalidArguments"
    failed.status.description = "statement missing"
    assert message_to_json(failed) == {
        "status": {"code": 3, "message": "invalidArguments", "description": "statement missing"}
    }


def test_message_to_json_text_is_compact_and_round_trips() -> None:
    response = sqlite_database_api_pb2.SqlExecuteResponse()
    response.row.column.add(text="naïve")
    text = message_to_json_text(response)
    assert text == '{"row":{"column":[{"text":"naïve"}]}}'
    assert parse_message(sqlite_database_api_pb2.SqlExecuteResponse, text) == response


def test_method_info_is_frozen() -> None:
    method = METHODS[GET_RESOURCE]
    assert isinstance(method, MethodInfo)
    with pytest.raises(AttributeError):
        method.name = "Other"  # type: ignore[misc]
