"""Files: UploadFile, DownloadFile and GetFile over file content kept under data_dir.

Content belongs to a resource (usually kind ``volt:file``, created with
SaveResource) and lives in ``<data_dir>/files/<resource id>``. The resource's
``size`` follows the content. ``file_path`` (a path inside a folder-like file
resource) is not modelled: the local Volt keeps one body per resource.
"""
from __future__ import annotations

import asyncio
import base64
import mimetypes
import pathlib

from volt_data.local.call import INVALID_ARGUMENTS, NOT_FOUND, Handler, ServerCall, StatusError
from volt_data.local.services.tree import Resource, ResourceStore
from volt_data.schema import message_to_json
from volt_data.schema.tdx.volt_api.volt.v1 import file_api_pb2, file_pb2

DOWNLOAD_BLOCK = 64 * 1024


class FileService:
    """The file API over a content directory."""

    def __init__(self, store: ResourceStore, directory: pathlib.Path) -> None:
        self.store = store
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        store.on_delete.append(lambda resource: self.path_for(resource.id).unlink(missing_ok=True))

    def path_for(self, resource_id: str) -> pathlib.Path:
        """Where a resource's content lives."""
        return self.directory / resource_id

    def handlers(self) -> dict[str, Handler]:
        """Method path -> handler."""
        prefix = "/tdx.volt_api.volt.v1.FileAPI/"
        return {
            prefix + "UploadFile": self.upload_file,
            prefix + "DownloadFile": self.download_file,
            prefix + "GetFile": self.get_file,
        }

    def _readable_content(self, call: ServerCall, resource_id: str) -> tuple[Resource, pathlib.Path]:
        resource = self.store.check_read(call.identity, resource_id)
        path = self.path_for(resource.id)
        if not path.exists():
            raise StatusError(NOT_FOUND, f"resource {resource_id!r} has no file content")
        return resource, path

    async def upload_file(self, call: ServerCall) -> None:
        """UploadFile: ``start`` names the resource (``truncate`` replaces the content,
        otherwise blocks are appended); each ``block`` is acknowledged with
        ``{"ack": n}`` (blocks received so far); half-close ends the upload."""
        request = await call.receive()
        if request is None:
            return
        if request.WhichOneof("payload") != "start":
            raise StatusError(INVALID_ARGUMENTS, "UploadFile must begin with a 'start' request")
        resource = self.store.check_write(call.identity, request.start.resource_id)
        path = self.path_for(resource.id)
        blocks = 0
        with open(path, "wb" if request.start.truncate or not path.exists() else "ab") as out:
            while (request := await call.receive()) is not None and not call.closed:
                if request.WhichOneof("payload") != "block":
                    raise StatusError(INVALID_ARGUMENTS, "only 'block' requests may follow 'start'")
                await asyncio.to_thread(out.write, request.block)
                blocks += 1
                await call.send({"ack": blocks})
        stored = self.store.require(resource.id)
        stored.size = path.stat().st_size
        self.store.replace(stored)

    async def download_file(self, call: ServerCall) -> None:
        """DownloadFile: the content as ``{"block": base64}`` messages of up to 64 KiB."""
        request = await call.receive()
        if request is None:
            return
        _, path = self._readable_content(call, request.resource_id)
        with open(path, "rb") as source:
            while not call.closed:
                block = await asyncio.to_thread(source.read, DOWNLOAD_BLOCK)
                if not block:
                    return
                await call.send('{"block":"' + base64.b64encode(block).decode("ascii") + '"}')

    async def get_file(self, call: ServerCall) -> None:
        """GetFile: name, size, media type and modification time of a resource's content."""
        request = await call.receive()
        if request is None:
            raise StatusError(INVALID_ARGUMENTS, "GetFile: no request was sent")
        resource, path = self._readable_content(call, request.resource_id)
        stat = path.stat()
        name = resource.name
        suffix = pathlib.PurePath(name).suffix
        info = file_pb2.File(
            file_path=request.file_path or name,
            file_name=name,
            extension=suffix.lstrip("."),
            size=stat.st_size,
            media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
            modified=int(stat.st_mtime * 1000),
            resource_id=resource.id,
            owner_resource_id=resource.owner,
        )
        await call.send(message_to_json(file_api_pb2.GetFileResponse(file=info)))
