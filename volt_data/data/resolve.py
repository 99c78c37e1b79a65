"""Database names -> resource ids, through the Volt's resource API.

Users name databases as they see them (``"sample"``); Execute needs the
resource id. One ``GetResources`` call lists the SQLite databases the identity
may read; the mapping is cached per client and refreshed once on a miss.
"""
from __future__ import annotations

import difflib
import logging
import re
import weakref

from volt_data.client.api import VoltClient
from volt_data.errors import VoltError

logger = logging.getLogger("volt_data.data.resolve")

SQLITE_DATABASE_KIND = "volt:sqlite-database"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class UnknownDatabaseError(VoltError, LookupError):
    """No readable database has that name or id; ``suggestions`` lists close names."""

    def __init__(self, message: str, suggestions: list[str]) -> None:
        super().__init__(message)
        self.suggestions = suggestions


# client -> list of (id, name, owner) of readable databases
_cache: "weakref.WeakKeyDictionary[VoltClient, list[tuple[str, str, str]]]" = weakref.WeakKeyDictionary()


async def list_databases(client: VoltClient, *, refresh: bool = False) -> list[tuple[str, str, str]]:
    """``(id, name, owner)`` of every SQLite database ``client`` may read (cached)."""
    if not refresh and client in _cache:
        return _cache[client]
    response = await client.get_resources({"kind": [SQLITE_DATABASE_KIND]})
    found = [
        (str(r.get("id", "")), str(r.get("name", "")), str(r.get("owner", "")))
        for r in response.get("resource", [])
    ]
    _cache[client] = found
    return found


def forget(client: VoltClient) -> None:
    """Drop the cached mapping (after creating or deleting databases)."""
    _cache.pop(client, None)


def _pick(databases: list[tuple[str, str, str]], wanted: str, own_id: str | None) -> str | None:
    for database_id, _name, _owner in databases:
        if database_id == wanted:
            return database_id
    named = [entry for entry in databases if entry[1] == wanted]
    if len(named) == 1:
        return named[0][0]
    if len(named) > 1:
        mine = [entry for entry in named if own_id and entry[2] == own_id]
        if len(mine) == 1:
            return mine[0][0]
        ids = ", ".join(entry[0] for entry in named)
        raise UnknownDatabaseError(f"several databases are named {wanted!r} ({ids}); pass the id instead", [])
    return None


async def resolve_database(client: VoltClient, database: str) -> str:
    """The resource id of ``database`` (an id or a name) for ``client``.

    A name shared by several databases resolves to the one the identity owns,
    else it is an error. An unlisted string shaped like a UUID is passed through
    as an id (the Volt will say if it is wrong).
    """
    if not isinstance(database, str) or not database:
        raise TypeError("database must be a database name or resource id (a non-empty string)")
    own_id = client.config.client_id
    for refresh in (False, True):
        databases = await list_databases(client, refresh=refresh)
        found = _pick(databases, database, own_id)
        if found is not None:
            return found
    if _UUID.match(database):
        return database
    names = sorted({name for _id, name, _owner in databases})
    close = difflib.get_close_matches(database, names, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else (
        f"; readable databases: {', '.join(map(repr, names[:20]))}" if names else "; no database is readable"
    )
    raise UnknownDatabaseError(f"no database named {database!r}{hint}", close)
