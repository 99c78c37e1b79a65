"""The resource tree of the local Volt, kept in a metadata SQLite database.

Every object a client can name (folders, databases, wires, files, home folders)
is a ``tdx.volt_api.volt.v1.Resource``. The message itself is stored serialised
next to the few columns the tree needs (parent, owner, name), so every field a
client saves comes back unchanged. Access is decided here, once, for every
service: see :meth:`ResourceStore.can_read` and :meth:`ResourceStore.can_write`.
"""
from __future__ import annotations

import logging
import pathlib
import sqlite3
import threading
import time
import uuid
from typing import Callable, Iterable

from volt_data.local.call import NOT_FOUND, PERMISSION_DENIED, Identity, StatusError
from volt_data.schema.tdx.volt_api.volt.v1 import volt_pb2

logger = logging.getLogger("volt_data.local.services.resources")

Resource = volt_pb2.Resource
FOLDER_KIND = "volt:folder"
EVERYONE = "*"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resource (
    id TEXT PRIMARY KEY,
    parent_id TEXT,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    message BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS resource_parent ON resource(parent_id);
CREATE TABLE IF NOT EXISTS grant_ (
    resource_id TEXT NOT NULL,
    identity_id TEXT NOT NULL,
    access TEXT NOT NULL,
    PRIMARY KEY (resource_id, identity_id)
);
"""


def now_ms() -> int:
    """Milliseconds since the epoch: the unit of ``created``/``modified``."""
    return int(time.time() * 1000)


class ResourceStore:
    """The persistent resource tree with its grants and access rules.

    ``root_id`` (the Volt id) names the root folder; each identity's home folder
    has the identity's id and sits under the root. ``on_delete`` callbacks let
    the services that keep content for a resource (database files, file
    bodies) drop it when the resource is deleted.
    """

    def __init__(self, path: pathlib.Path, volt_id: str) -> None:
        self.root_id = volt_id
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self.on_delete: list[Callable[[Resource], None]] = []
        if self.get(volt_id) is None:
            root = Resource(id=volt_id, name="root", kind=[FOLDER_KIND], owner=volt_id)
            self._insert(root, None)

    def close(self) -> None:
        """Close the metadata database."""
        with self._lock:
            self._db.close()

    # -- reading -----------------------------------------------------------------

    def get(self, resource_id: str) -> Resource | None:
        """The stored resource, or None."""
        with self._lock:
            found = self._db.execute("SELECT message FROM resource WHERE id = ?", (resource_id,)).fetchone()
        return None if found is None else Resource.FromString(found[0])

    def require(self, resource_id: str) -> Resource:
        """The stored resource; NOT_FOUND status otherwise."""
        resource = self.get(resource_id) if resource_id else None
        if resource is None:
            raise StatusError(NOT_FOUND, f"resource {resource_id!r} not found")
        return resource

    def parent_id(self, resource_id: str) -> str | None:
        """The id of the resource's parent folder (None for the root)."""
        with self._lock:
            found = self._db.execute("SELECT parent_id FROM resource WHERE id = ?", (resource_id,)).fetchone()
        return None if found is None else found[0]

    def children(self, resource_id: str) -> list[Resource]:
        """Direct children, in name order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT message FROM resource WHERE parent_id = ? ORDER BY name, id", (resource_id,)
            ).fetchall()
        return [Resource.FromString(row[0]) for row in rows]

    def all(self) -> list[Resource]:
        """Every resource (the local Volt holds few enough to filter in Python)."""
        with self._lock:
            rows = self._db.execute("SELECT message FROM resource ORDER BY name, id").fetchall()
        return [Resource.FromString(row[0]) for row in rows]

    def ancestor_ids(self, resource_id: str) -> list[str]:
        """Ids from the parent up to the root (nearest first)."""
        chain: list[str] = []
        current = self.parent_id(resource_id)
        while current is not None and current not in chain:
            chain.append(current)
            current = self.parent_id(current)
        return chain

    def descendants(self, resource_id: str, depth: int = 0) -> list[tuple[Resource, int]]:
        """Breadth-first descendants with their depth (1 = child); ``depth`` <= 0 means all."""
        found: list[tuple[Resource, int]] = []
        level, frontier = 1, [resource_id]
        while frontier and (depth <= 0 or level <= depth):
            next_frontier = []
            for parent in frontier:
                for child in self.children(parent):
                    found.append((child, level))
                    next_frontier.append(child.id)
            frontier, level = next_frontier, level + 1
        return found

    def find_child(self, parent_id: str, name: str, kind: str | None = None) -> Resource | None:
        """A child of ``parent_id`` with this name (and kind), used to stay idempotent."""
        for child in self.children(parent_id):
            if child.name == name and (kind is None or kind in child.kind):
                return child
        return None

    # -- access ------------------------------------------------------------------

    def grant(self, resource_id: str, identity_id: str, access: str) -> None:
        """Give ``identity_id`` (or :data:`EVERYONE`) ``read``/``write`` access to a subtree."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO grant_ (resource_id, identity_id, access) VALUES (?, ?, ?)",
                (resource_id, identity_id, access),
            )

    def _granted(self, identity: Identity, resource_ids: Iterable[str], levels: tuple[str, ...]) -> bool:
        ids = list(resource_ids)
        marks = ",".join("?" * len(ids))
        levels_marks = ",".join("?" * len(levels))
        with self._lock:
            found = self._db.execute(
                f"SELECT 1 FROM grant_ WHERE resource_id IN ({marks}) AND identity_id IN (?, ?) "
                f"AND access IN ({levels_marks}) LIMIT 1",
                (*ids, identity.id, EVERYONE, *levels),
            ).fetchone()
        return found is not None

    def _owned_or_home(self, identity: Identity, resource: Resource) -> bool:
        return resource.owner == identity.id or identity.id in (resource.id, *self.ancestor_ids(resource.id))

    def can_read(self, identity: Identity, resource: Resource) -> bool:
        """Owner identities read everything; others what they own, their home subtree,
        what was granted to them (or to everyone) on the resource or an ancestor, and
        the root folder itself (its listing is filtered)."""
        if identity.is_owner or resource.id == self.root_id:
            return True
        if self._owned_or_home(identity, resource):
            return True
        return self._granted(identity, (resource.id, *self.ancestor_ids(resource.id)), ("read", "write", "owner"))

    def can_write(self, identity: Identity, resource: Resource) -> bool:
        """``read`` identities never write; ``owner`` identities always may; ``write``
        identities may change what they own, their home subtree, or a write grant."""
        if not identity.can_write:
            return False
        if identity.is_owner or self._owned_or_home(identity, resource):
            return True
        return self._granted(identity, (resource.id, *self.ancestor_ids(resource.id)), ("write", "owner"))

    def check_read(self, identity: Identity, resource_id: str) -> Resource:
        """The resource if ``identity`` may read it; NOT_FOUND / PERMISSION_DENIED otherwise."""
        resource = self.require(resource_id)
        if not self.can_read(identity, resource):
            raise StatusError(PERMISSION_DENIED, f"{identity.name or identity.id} may not read {resource_id!r}")
        return resource

    def check_write(self, identity: Identity, resource_id: str) -> Resource:
        """The resource if ``identity`` may change it; NOT_FOUND / PERMISSION_DENIED otherwise."""
        resource = self.require(resource_id)
        if not self.can_write(identity, resource):
            raise StatusError(PERMISSION_DENIED, f"{identity.name or identity.id} may not change {resource_id!r}")
        return resource

    # -- changing ----------------------------------------------------------------

    def _insert(self, resource: Resource, parent_id: str | None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO resource (id, parent_id, owner, name, message) VALUES (?, ?, ?, ?, ?)",
                (resource.id, parent_id, resource.owner, resource.name, resource.SerializeToString()),
            )

    def create(self, resource: Resource, parent_id: str, owner: str) -> Resource:
        """Store a new resource under ``parent_id``; fills id, owner, times, version, volt_id."""
        created = Resource()
        created.CopyFrom(resource)
        created.ClearField("child")
        if not created.id:
            created.id = str(uuid.uuid4())
        created.owner = owner
        created.volt_id = self.root_id
        created.created = created.modified = now_ms()
        created.version = 1
        if not created.status:
            created.status = volt_pb2.RESOURCE_STATUS_LIVE
        self._insert(created, parent_id)
        return created

    def update(self, resource: Resource, *, purge_attributes: bool = False) -> Resource:
        """Replace the stored fields a client may change; bumps version and modified."""
        stored = self.require(resource.id)
        for field in ("name", "description", "share_mode", "store", "content_hash", "service_description"):
            if resource.HasField(field) if field == "service_description" else getattr(resource, field):
                if field == "service_description":
                    stored.service_description.CopyFrom(resource.service_description)
                else:
                    setattr(stored, field, getattr(resource, field))
        if resource.kind:
            del stored.kind[:]
            stored.kind.extend(resource.kind)
        if resource.alias:
            del stored.alias[:]
            stored.alias.extend(resource.alias)
        if purge_attributes or resource.attribute:
            del stored.attribute[:]
            stored.attribute.extend(resource.attribute)
        return self.replace(stored)

    def replace(self, resource: Resource) -> Resource:
        """Write back a changed resource (service-internal: size, content hash...)."""
        resource.version += 1
        resource.modified = now_ms()
        with self._lock:
            self._db.execute(
                "UPDATE resource SET name = ?, owner = ?, message = ? WHERE id = ?",
                (resource.name, resource.owner, resource.SerializeToString(), resource.id),
            )
        return resource

    def delete(self, resource_id: str) -> list[Resource]:
        """Delete a resource and its whole subtree; returns what was deleted."""
        doomed = [self.require(resource_id)] + [child for child, _ in self.descendants(resource_id)]
        with self._lock:
            for resource in doomed:
                self._db.execute("DELETE FROM resource WHERE id = ?", (resource.id,))
                self._db.execute("DELETE FROM grant_ WHERE resource_id = ?", (resource.id,))
        for resource in doomed:
            for callback in self.on_delete:
                try:
                    callback(resource)
                except Exception:  # a content clean-up failure must not undo the delete
                    logger.exception("clean-up after deleting %s failed", resource.id)
        return doomed

    def ensure_folder(self, resource_id: str | None, name: str, parent_id: str, owner: str) -> Resource:
        """A folder with this id (or this name under ``parent_id``), created if missing."""
        existing = self.get(resource_id) if resource_id else self.find_child(parent_id, name, FOLDER_KIND)
        if existing is not None:
            return existing
        return self.create(Resource(id=resource_id or "", name=name, kind=[FOLDER_KIND]), parent_id, owner)
