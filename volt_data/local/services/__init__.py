"""The local Volt's API handlers: what runs once the transport has authenticated a call.

:class:`VoltServices` owns the state under ``data_dir`` (the resource tree in
``volt-resources.db``, database files, file contents) and maps method paths to
handlers following the :mod:`volt_data.local.call` contract. Only methods that
really work are offered; the transport answers every other one "unimplemented".
"""
from __future__ import annotations

import asyncio
import logging
import pathlib

from volt_data.local.call import Handler, Identity
from volt_data.local.services import sample
from volt_data.local.services.files import FileService
from volt_data.local.services.resources import ResourceHandlers
from volt_data.local.services.sqlite import DATABASE_KINDS, SqliteService
from volt_data.local.services.tree import EVERYONE, ResourceStore
from volt_data.local.services.wires import WIRE_KIND, WireService

__all__ = ["VoltServices"]

logger = logging.getLogger("volt_data.local.services")

SAMPLE_DATABASE = "sample"
SAMPLE_TABLE = "readings"
SAMPLE_WIRE = "sensor-stream"


class VoltServices:
    """Every implemented Volt API method over one data directory."""

    def __init__(self, data_dir: pathlib.Path, volt_id: str) -> None:
        self.data_dir = pathlib.Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.volt_id = volt_id
        self.store = ResourceStore(self.data_dir / "volt-resources.db", volt_id)
        self.resources = ResourceHandlers(self.store)
        self.sqlite = SqliteService(self.store, self.data_dir / "databases")
        self.wires = WireService(self.store)
        self.files = FileService(self.store, self.data_dir / "files")
        self._handlers: dict[str, Handler] = {}
        for service in (self.resources, self.sqlite, self.wires, self.files):
            self._handlers.update(service.handlers())
        self._publishers: dict[str, asyncio.Task] = {}

    def handler_for(self, method_path: str) -> Handler | None:
        """The handler of ``method_path`` (``/pkg.Service/Method``), or None if not implemented."""
        return self._handlers.get(method_path)

    def ensure_home(self, identity: Identity) -> None:
        """Create the identity's home folder (id == identity id) under the root if missing."""
        self.store.ensure_folder(identity.id, identity.name or identity.id, self.store.root_id, identity.id)

    def load_sample(self, owner: Identity) -> dict:
        """Create (once) the sample database and wire in ``owner``'s home, readable by everyone.

        Starts the wire's publisher when called inside a running event loop.
        Returns the ids and names a caller needs to use them.
        """
        self.ensure_home(owner)
        database = self.store.find_child(owner.id, SAMPLE_DATABASE, DATABASE_KINDS[1])
        if database is None:
            database = self.sqlite.create_database(owner, SAMPLE_DATABASE, owner.id, "Sample sensor data")
            sample.build_sample_database(str(self.sqlite.path_for(database.id)))
        wire = self.store.find_child(owner.id, SAMPLE_WIRE, WIRE_KIND)
        if wire is None:
            wire = self.wires.create_wire(owner, SAMPLE_WIRE, owner.id, "Live JSON sensor readings")
        for resource in (database, wire):
            self.store.grant(resource.id, EVERYONE, "read")
        self._start_publisher(wire.id)
        return {
            "database_id": database.id,
            "database_name": database.name,
            "table": SAMPLE_TABLE,
            "tables": ["sensors", "readings", "people", "value_types"],
            "wire_id": wire.id,
            "wire_name": wire.name,
            "publishing": wire.id in self._publishers,
        }

    def _start_publisher(self, wire_id: str) -> None:
        if wire_id in self._publishers and not self._publishers[wire_id].done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            logger.info("no running event loop: the sample wire will not publish")
            return
        self._publishers[wire_id] = loop.create_task(
            sample.publish_sensor_stream(self.wires.publish, wire_id), name=f"sample publisher {wire_id}"
        )

    async def close(self) -> None:
        """Stop the sample publishers and close the metadata database."""
        publishers = list(self._publishers.values())
        self._publishers.clear()
        for task in publishers:
            task.cancel()
        await asyncio.gather(*publishers, return_exceptions=True)
        self.store.close()

