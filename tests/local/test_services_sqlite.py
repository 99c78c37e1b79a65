"""Execute, BulkUpdate, CreateDatabase and ImportCSV of the local Volt on real SQLite files."""
from __future__ import annotations

import asyncio
import base64
import sqlite3

import pytest
from service_harness import OWNER, READER, WRITER, InProcessCall, call_method, serve, status_code

from volt_data.local.call import INVALID_ARGUMENTS, PERMISSION_DENIED

DATA = "/tdx.volt_api.data.v1.SqliteDatabaseAPI/"
EXECUTE = DATA + "Execute"


@pytest.fixture
def database(services):
    """A writer-owned database with a table of every storage class, shared read-only with everyone."""
    created = services.sqlite.create_database(WRITER, "typed")
    with sqlite3.connect(services.sqlite.path_for(created.id)) as connection:
        connection.execute("CREATE TABLE t (i INTEGER, s TEXT, r REAL, b BLOB, n)")
        connection.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [
            (9007199254740993, "row0", 0.5, b"\x00\xff", None),
            (-9223372036854775808, "é 漢字 🎉 \"q\"", float("inf"), b"", None),
            (9223372036854775807, "", float("-inf"), None, 7),
            (None, None, None, None, None),
        ])
    services.store.grant(created.id, "*", "read")
    return created.id


def execute(services, identity, start, *more):
    return asyncio.run(call_method(services, EXECUTE, identity, {"start": start}, *more))


def test_header_and_cells_follow_protocol(services, database):
    responses = execute(services, READER, {"database_id": database, "statement": "SELECT * FROM t"})
    assert responses[0] == {"header": {"column": [
        {"name": "i", "type": "DATA_TYPE_INTEGER"}, {"name": "s", "type": "DATA_TYPE_TEXT"},
        {"name": "r", "type": "DATA_TYPE_REAL"}, {"name": "b", "type": "DATA_TYPE_BLOB"},
        {"name": "n", "type": "DATA_TYPE_INTEGER"}]}}
    rows = [r["row"]["column"] for r in responses[1:]]
    assert rows[0] == [{"integer": "9007199254740993"}, {"text": "row0"}, {"real": 0.5}, {"blob": "AP8="}, {"null": True}]
    assert rows[1] == [{"integer": "-9223372036854775808"}, {"text": "é 漢字 🎉 \"q\""}, {"real": "Infinity"},
                       {"blob": ""}, {"null": True}]
    assert rows[2] == [{"integer": "9223372036854775807"}, {"text": ""}, {"real": "-Infinity"}, {"null": True},
                       {"integer": "7"}]
    assert rows[3] == [{"null": True}] * 5


def test_cells_follow_each_value_type_not_the_column(services, database):
    responses = execute(services, OWNER, {"database_id": database, "statement":
                                          "SELECT 1 AS v UNION ALL SELECT 'x' UNION ALL SELECT 2.5 UNION ALL SELECT x'01'"})
    assert responses[0]["header"]["column"][0]["type"] == "DATA_TYPE_INTEGER"
    assert [r["row"]["column"][0] for r in responses[1:]] == [
        {"integer": "1"}, {"text": "x"}, {"real": 2.5}, {"blob": base64.b64encode(b"\x01").decode()}]


def test_empty_result_sends_header_only(services, database):
    responses = execute(services, READER, {"database_id": database, "statement": "SELECT i, s FROM t WHERE 0"})
    assert responses == [{"header": {"column": [{"name": "i"}, {"name": "s"}]}}]


def test_sqlite_errors_carry_sqlites_message(services, database):
    responses = execute(services, OWNER, {"database_id": database, "statement": "SELECT * FROM missing"})
    assert responses == [{"status": {"code": INVALID_ARGUMENTS, "message": "invalidArguments",
                                     "description": "no such table: missing"}}]


def test_first_request_must_be_start(services, database):
    responses = asyncio.run(call_method(services, EXECUTE, OWNER, {}))
    assert status_code(responses) == INVALID_ARGUMENTS


def test_legacy_flat_request_is_accepted(services, database):
    responses = asyncio.run(call_method(services, EXECUTE, READER, {"database_id": database, "statement": "SELECT 1 AS one"}))
    assert responses[1] == {"row": {"column": [{"integer": "1"}]}}


def test_parameters_bind_by_name(services, database):
    responses = execute(services, READER, {"database_id": database, "statement": "SELECT s FROM t WHERE i = :i",
                                           "parameter": {"i": {"integer": "9007199254740993"}}})
    assert responses[1] == {"row": {"column": [{"text": "row0"}]}}


def test_writes_report_affected_rows_and_need_write_access(services, database):
    statement = {"database_id": database, "statement": "UPDATE t SET s = 'changed' WHERE i IS NOT NULL"}
    assert execute(services, WRITER, statement) == [{"affected_rows": 3}]
    denied = execute(services, READER, statement)
    assert status_code(denied) == PERMISSION_DENIED and "not authorized" in denied[0]["status"]["description"]
    create = {"database_id": database, "statement": "CREATE TABLE evil (x)"}
    assert status_code(execute(services, READER, create)) == PERMISSION_DENIED
    assert execute(services, WRITER, create) == [{"affected_rows": 0}]


def test_paging_waits_for_next_and_end_stops(services, database):
    async def scenario():
        call = InProcessCall(EXECUTE, READER)
        call.push({"start": {"database_id": database, "statement": "SELECT i FROM t", "page_size": 2}})
        task = asyncio.create_task(serve(services.handler_for(EXECUTE), call))
        await call.wait_for(3)
        await asyncio.sleep(0.05)
        assert len(call.responses) == 3  # header + one page, then it waits
        call.push({"next": {}})
        await call.wait_for(5)
        call.push({"end": {}})
        await asyncio.wait_for(task, 3)
        return call.responses
    responses = asyncio.run(scenario())
    assert len(responses) == 5


def test_last_full_page_ends_without_next(services, database):
    responses = execute(services, READER, {"database_id": database, "statement": "SELECT i FROM t", "page_size": 4})
    assert len(responses) == 5


def _count(services, database):
    return execute(services, OWNER, {"database_id": database, "statement": "SELECT count(*) FROM t"})[1]["row"]["column"][0]


def test_transaction_commits_on_end_commit(services, database):
    start = {"database_id": database, "statement": "INSERT INTO t (i) VALUES (1)", "transaction": True}
    responses = execute(services, WRITER, start, {"start": {"statement": "INSERT INTO t (i) VALUES (2)"}},
                        {"end": {"commit_transaction": True}})
    assert responses == [{"affected_rows": 1}, {"affected_rows": 1}]
    assert _count(services, database) == {"integer": "6"}


def test_transaction_rolls_back_on_end_without_commit_or_half_close(services, database):
    start = {"database_id": database, "statement": "DELETE FROM t", "transaction": True}
    assert execute(services, WRITER, start, {"end": {}}) == [{"affected_rows": 4}]
    assert execute(services, WRITER, start) == [{"affected_rows": 4}]  # half-close only
    assert _count(services, database) == {"integer": "4"}


def test_transaction_rolls_back_on_disconnect(services, database):
    async def scenario():
        call = InProcessCall(EXECUTE, WRITER)
        call.push({"start": {"database_id": database, "statement": "DELETE FROM t", "transaction": True}})
        task = asyncio.create_task(serve(services.handler_for(EXECUTE), call))
        await call.wait_for(1)
        call.disconnect()
        await asyncio.wait_for(task, 3)
    asyncio.run(scenario())
    assert _count(services, database) == {"integer": "4"}


def test_disconnect_stops_a_long_stream(services, database):
    async def scenario():
        call = InProcessCall(EXECUTE, READER)
        call.push({"start": {"database_id": database, "statement":
                             "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c"}})
        task = asyncio.create_task(serve(services.handler_for(EXECUTE), call))
        await call.wait_for(100)
        call.disconnect()
        await asyncio.wait_for(task, 3)
        return len(call.responses)
    assert asyncio.run(scenario()) < 1_000_000


def test_create_database_then_bulk_update_is_all_or_nothing(services):
    [created] = asyncio.run(call_method(services, "/tdx.volt_api.data.v1.SqliteServerAPI/CreateDatabase", WRITER,
                                        {"name": "mine"}))
    database = created["resource"]["id"]
    assert created["resource"]["kind"] == ["volt:database", "volt:sqlite-database"]
    ok = asyncio.run(call_method(services, DATA + "BulkUpdate", WRITER, {"database_id": database, "statement": [
        "CREATE TABLE x (a INTEGER)", "INSERT INTO x VALUES (1)"]}))
    assert ok == [{}]
    failed = asyncio.run(call_method(services, DATA + "BulkUpdate", WRITER, {"database_id": database, "statement": [
        "INSERT INTO x VALUES (2)", "INSERT INTO nowhere VALUES (3)"]}))
    assert failed[0]["status"]["description"] == "statement 2: no such table: nowhere"
    with sqlite3.connect(services.sqlite.path_for(database)) as connection:
        assert connection.execute("SELECT a FROM x").fetchall() == [(1,)]
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    denied = asyncio.run(call_method(services, DATA + "BulkUpdate", READER, {"database_id": database, "statement": []}))
    assert status_code(denied) == PERMISSION_DENIED


def _import(services, database, csv_text, **config):
    blocks = [csv_text[i:i + 7].encode() for i in range(0, len(csv_text), 7)]
    return asyncio.run(call_method(
        services, DATA + "ImportCSV", WRITER,
        {"configuration": {"database_id": database, **config}},
        *({"block": base64.b64encode(block).decode()} for block in blocks),
        {"upload_complete": True},
    ))


def test_import_csv_infers_types_and_reports_progress(services):
    database = services.sqlite.create_database(WRITER, "imports").id
    csv_text = 'id,price,name,empty\n1,2.5,"a, b",\n2,3,"multi\nline",\n3,4.25,ünï,\n'
    responses = _import(services, database, csv_text, table_name="items", create_table=True, progress_interval=1)
    assert responses == [{"row_count": "1", "total_rows": "3"}, {"row_count": "2", "total_rows": "3"},
                         {"row_count": "3", "total_rows": "3"}]
    with sqlite3.connect(services.sqlite.path_for(database)) as connection:
        declared = [(row[1], row[2]) for row in connection.execute("PRAGMA table_info(items)")]
        assert declared == [("id", "INTEGER"), ("price", "REAL"), ("name", "TEXT"), ("empty", "TEXT")]
        assert connection.execute("SELECT * FROM items ORDER BY id").fetchall() == [
            (1, 2.5, "a, b", None), (2, 3.0, "multi\nline", None), (3, 4.25, "ünï", None)]


def test_import_csv_abort_leaves_nothing(services):
    database = services.sqlite.create_database(WRITER, "imports").id
    responses = asyncio.run(call_method(
        services, DATA + "ImportCSV", WRITER,
        {"configuration": {"database_id": database, "table_name": "t", "create_table": True}},
        {"block": base64.b64encode(b"a\n1\n").decode()}, {"abort": True}))
    assert responses == []
    with sqlite3.connect(services.sqlite.path_for(database)) as connection:
        assert connection.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_import_csv_error_rolls_back(services):
    database = services.sqlite.create_database(WRITER, "imports").id
    responses = _import(services, database, "a,b\n1,2\n3\n", table_name="t", create_table=True)
    assert status_code(responses) == INVALID_ARGUMENTS
    with sqlite3.connect(services.sqlite.path_for(database)) as connection:
        assert connection.execute("SELECT name FROM sqlite_master").fetchall() == []
