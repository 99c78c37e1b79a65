"""SQLite databases of the local Volt: CreateDatabase, Execute, BulkUpdate, ImportCSV.

A database is a resource (kind ``volt:database`` + ``volt:sqlite-database``)
whose file is ``<data_dir>/databases/<id>.sqlite``, in WAL mode. Each call opens
its own connection and runs every SQLite step in a worker thread
(``asyncio.to_thread``), so a long query never stalls the server. Callers
without write access to the database get a connection whose authorizer refuses
anything but reading; such refusals answer PERMISSION_DENIED.
"""
from __future__ import annotations

import asyncio
import logging
import pathlib
import sqlite3
import threading
from typing import Any

from volt_data.local.call import (
    INVALID_ARGUMENTS,
    PERMISSION_DENIED,
    Handler,
    Identity,
    ServerCall,
    StatusError,
    send_all,
)
from volt_data.local.services import csv_import
from volt_data.local.services.resources import create_or_update
from volt_data.local.services.rows import column_types, header_json, row_encoder
from volt_data.local.services.tree import Resource, ResourceStore
from volt_data.schema import message_to_json
from volt_data.schema.tdx.volt_api.data.v1 import sqlite_server_api_pb2 as server_api

logger = logging.getLogger("volt_data.local.services.sqlite")

DATABASE_KINDS = ("volt:database", "volt:sqlite-database")
FETCH_BATCH = 1000

# Authorizer actions a read-only caller may perform (sqlite3.SQLITE_* codes).
_READ_ACTIONS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_RECURSIVE,
}


class _ReadOnlyGuard:
    """An authorizer that lets reads through and remembers whether it refused something."""

    def __init__(self) -> None:
        self.refused = False

    def __call__(self, action: int, arg1: Any, arg2: Any, _db: Any, _trigger: Any) -> int:
        if action in _READ_ACTIONS or (action == sqlite3.SQLITE_PRAGMA and arg2 is None):
            return sqlite3.SQLITE_OK
        self.refused = True
        return sqlite3.SQLITE_DENY


def open_database(path: pathlib.Path, writable: bool) -> tuple[sqlite3.Connection, _ReadOnlyGuard | None]:
    """An autocommit connection (transactions are explicit) usable from worker threads."""
    connection = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
    connection.execute("PRAGMA journal_mode=WAL")
    guard = None
    if not writable:
        guard = _ReadOnlyGuard()
        connection.set_authorizer(guard)
    return connection, guard


def _parameters(start: Any) -> dict[str, Any] | tuple:
    """``start.parameter`` (name -> AttributeValue) as sqlite3 named parameters."""
    if not start.parameter:
        return ()
    values: dict[str, Any] = {}
    for name, attribute in start.parameter.items():
        which = attribute.WhichOneof("value")
        value = getattr(attribute, which) if which else None
        values[name.lstrip(":@$")] = int(value) if isinstance(value, bool) else value
    return values


def _sqlite_failure(error: sqlite3.Error, guard: _ReadOnlyGuard | None, identity: Identity) -> StatusError:
    if guard is not None and guard.refused:
        guard.refused = False
        return StatusError(PERMISSION_DENIED, f"{identity.name or identity.id} may only read this database ({error})")
    return StatusError(INVALID_ARGUMENTS, str(error))


class SqliteService:
    """The SQLite API over databases stored under ``directory``."""

    def __init__(self, store: ResourceStore, directory: pathlib.Path) -> None:
        self.store = store
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        store.on_delete.append(self._forget)

    def path_for(self, database_id: str) -> pathlib.Path:
        """Where a database's file lives."""
        return self.directory / f"{database_id}.sqlite"

    def _forget(self, resource: Resource) -> None:
        if DATABASE_KINDS[1] in resource.kind:
            for suffix in ("", "-wal", "-shm"):
                pathlib.Path(str(self.path_for(resource.id)) + suffix).unlink(missing_ok=True)

    def handlers(self) -> dict[str, Handler]:
        """Method path -> handler."""
        return {
            "/tdx.volt_api.data.v1.SqliteServerAPI/CreateDatabase": self.create_database_call,
            "/tdx.volt_api.data.v1.SqliteDatabaseAPI/Execute": self.execute,
            "/tdx.volt_api.data.v1.SqliteDatabaseAPI/BulkUpdate": self.bulk_update,
            "/tdx.volt_api.data.v1.SqliteDatabaseAPI/ImportCSV": self.import_csv,
        }

    # -- databases ---------------------------------------------------------------

    def create_database(self, identity: Identity, name: str, parent_id: str = "", description: str = "") -> Resource:
        """Create the resource and an empty WAL database file."""
        resource = Resource(name=name, description=description, kind=list(DATABASE_KINDS))
        created = create_or_update(self.store, identity, resource, create=True, parent_id=parent_id)
        connection, _ = open_database(self.path_for(created.id), writable=True)
        connection.close()
        return created

    def database(self, identity: Identity, database_id: str, *, write: bool) -> tuple[Resource, bool]:
        """The database resource after an access check, and whether the caller may write to it."""
        resource = (self.store.check_write if write else self.store.check_read)(identity, database_id)
        if DATABASE_KINDS[1] not in resource.kind:
            raise StatusError(INVALID_ARGUMENTS, f"resource {database_id!r} is not a SQLite database")
        return resource, self.store.can_write(identity, resource)

    async def create_database_call(self, call: ServerCall) -> None:
        """CreateDatabase: a new database resource (in the caller's home by default)."""
        request = await call.receive()
        if request is None or not request.name:
            raise StatusError(INVALID_ARGUMENTS, "CreateDatabase needs a name")
        created = await asyncio.to_thread(
            self.create_database, call.identity, request.name, request.create_in_parent_id, request.description
        )
        await call.send(message_to_json(server_api.CreateDatabaseResponse(resource=created)))

    # -- Execute -----------------------------------------------------------------

    async def execute(self, call: ServerCall) -> None:
        """Execute (bidi): ``start`` runs a statement; rows stream, paged by ``page_size``.

        Without ``transaction`` the call ends after the statement. With it, the
        call stays open for further ``start`` statements until ``end``
        (``commit_transaction`` commits; anything else, half-close or disconnect
        rolls back).
        """
        request = await call.receive()
        if request is None:
            return
        if request.WhichOneof("payload") != "start":
            raise StatusError(INVALID_ARGUMENTS, "Execute must begin with a 'start' request")
        start = request.start
        if not start.statement.strip():
            raise StatusError(INVALID_ARGUMENTS, "statement missing")
        _, writable = self.database(call.identity, start.database_id, write=False)
        connection, guard = await asyncio.to_thread(open_database, self.path_for(start.database_id), writable)
        db = SerialConnection(connection)
        in_transaction = False
        try:
            if start.transaction:
                await db.run(connection.execute, "BEGIN")
                in_transaction = True
            while True:
                end = await self._run_statement(call, db, guard, start)
                if not in_transaction:
                    return
                if end is None:
                    request = await call.receive()
                    if request is None or call.closed:
                        return
                    kind = request.WhichOneof("payload")
                    if kind == "start":
                        if request.start.database_id not in ("", start.database_id):
                            raise StatusError(INVALID_ARGUMENTS, "a transaction cannot span databases")
                        start = request.start
                        continue
                    if kind != "end":
                        raise StatusError(INVALID_ARGUMENTS, f"unexpected '{kind}' between statements")
                    end = request
                if end is not False and end.end.commit_transaction:
                    try:
                        await db.run(connection.execute, "COMMIT")
                    except sqlite3.Error as error:
                        raise _sqlite_failure(error, guard, call.identity) from None
                    in_transaction = False
                return
        finally:
            await db.run(_close, connection, in_transaction)

    async def _run_statement(self, call: ServerCall, db: "SerialConnection", guard, start) -> Any:
        """Run one statement and stream its answer.

        Returns None when the statement finished, the ``end`` request if the
        client ended during paging, or False if the client went away.
        """
        if not start.statement.strip():
            raise StatusError(INVALID_ARGUMENTS, "statement missing")
        try:
            cursor = await db.run(db.connection.execute, start.statement, _parameters(start))
        except sqlite3.Error as error:
            raise _sqlite_failure(error, guard, call.identity) from None
        if cursor.description is None:
            await call.send('{"affected_rows":%d}' % max(cursor.rowcount, 0))
            return None
        names = [column[0] for column in cursor.description]
        try:
            batch = await db.run(cursor.fetchmany, FETCH_BATCH)
            types = column_types(batch, len(names))
            await call.send(header_json(names, types))
            encode = row_encoder(types)
            page_size, sent_in_page = start.page_size, 0
            lines = encode(batch)
            while lines:
                sent = 0
                while sent < len(lines):
                    if page_size and sent_in_page >= page_size:
                        request = await call.receive()
                        kind = None if request is None else request.WhichOneof("payload")
                        if kind == "next":
                            sent_in_page = 0
                        elif kind == "end":
                            return request
                        elif request is None:
                            return False
                        else:
                            raise StatusError(INVALID_ARGUMENTS, f"expected 'next' or 'end', got '{kind}'")
                    if call.closed:
                        return False
                    # As many rows as the page has room for, sealed and written together.
                    count = len(lines) - sent
                    if page_size:
                        count = min(count, page_size - sent_in_page)
                    await send_all(call, lines[sent:sent + count] if count < len(lines) else lines)
                    sent += count
                    sent_in_page += count
                # Fetching and encoding both run in the worker thread: the loop only sends.
                lines = await db.run(_fetch_lines, cursor, encode)
        except sqlite3.Error as error:
            raise _sqlite_failure(error, guard, call.identity) from None
        finally:
            await db.run(cursor.close)
        return None

    # -- BulkUpdate, ImportCSV ---------------------------------------------------

    async def bulk_update(self, call: ServerCall) -> None:
        """BulkUpdate: every statement in one transaction, all or nothing."""
        request = await call.receive()
        if request is None:
            raise StatusError(INVALID_ARGUMENTS, "BulkUpdate: no request was sent")
        self.database(call.identity, request.database_id, write=True)
        statements = list(request.statement)
        await asyncio.to_thread(self._bulk_update, self.path_for(request.database_id), statements)
        await call.send({})

    def _bulk_update(self, path: pathlib.Path, statements: list[str]) -> None:
        connection, _ = open_database(path, writable=True)
        try:
            connection.execute("BEGIN")
            for index, statement in enumerate(statements):
                try:
                    connection.execute(statement)
                except sqlite3.Error as error:
                    connection.execute("ROLLBACK")
                    raise StatusError(INVALID_ARGUMENTS, f"statement {index + 1}: {error}") from None
            connection.execute("COMMIT")
        finally:
            connection.close()

    async def import_csv(self, call: ServerCall) -> None:
        """ImportCSV: see :mod:`volt_data.local.services.csv_import`."""
        await csv_import.import_csv(self, call)


class SerialConnection:
    """Every use of one sqlite3 connection, in worker threads, one at a time.

    When a call is cancelled its last ``fetchmany`` keeps running in a worker
    thread; closing the cursor or the connection from another thread meanwhile
    crashes the sqlite3 module (a segfault, seen under load). The lock makes the
    close wait for that fetch instead.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self._lock = threading.Lock()

    def _locked(self, function, *args):
        with self._lock:
            return function(*args)

    async def run(self, function, *args):
        return await asyncio.to_thread(self._locked, function, *args)


def _fetch_lines(cursor: sqlite3.Cursor, encode) -> list[str]:
    return encode(cursor.fetchmany(FETCH_BATCH))


def _close(connection: sqlite3.Connection, in_transaction: bool) -> None:
    try:
        if in_transaction:
            connection.execute("ROLLBACK")
    except sqlite3.Error:
        logger.warning("rollback failed while closing an Execute call", exc_info=True)
    finally:
        connection.close()
