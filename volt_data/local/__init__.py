"""The local Volt: a protocol-faithful Volt server inside the package.

:class:`LocalVolt` starts one on loopback, for tests, notebooks and the
``volt-data serve`` command. The published clients (v1 ``volt_client_web``
0.1.14, v2 ``@tdxvolt/volt-client-web``) and our own talk to it unchanged.
"""
from __future__ import annotations

import json
import pathlib
import shutil
import tempfile
from typing import Any, Callable, Optional, TypeVar

from volt_data.local.runner import BackgroundLoop
from volt_data.local.server import DEFAULT_MAX_SIZE, VoltServer
from volt_data.local.services import VoltServices
from volt_data.local.state import IdentityRecord, VoltState
from volt_data.local.tls import server_ssl_context, write_private_text

__all__ = ["LocalVolt"]

T = TypeVar("T")


class LocalVolt:
    """A local Volt serving both protocol generations on one websocket endpoint.

    Use it as a sync context manager (it then runs on a background thread with
    its own event loop, so blocking client code can call it) or as an async
    one (it runs on the caller's loop)::

        with LocalVolt() as volt:
            config = volt.client_config(protocol="v2")

    ``data_dir=None`` uses a temporary directory, removed on stop; ``port=0``
    picks a free port; ``tls=True`` serves ``wss://`` with a certificate of the
    Volt's own CA (its PEM is ``ca_pem`` in every client config).
    """

    def __init__(
        self,
        data_dir: str | pathlib.Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: bool = False,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self._temporary = data_dir is None
        self.data_dir = pathlib.Path(tempfile.mkdtemp(prefix="volt-data-")) if data_dir is None else (
            pathlib.Path(data_dir).expanduser()
        )
        self.host = host
        self.requested_port = port
        self.tls = tls
        self.max_size = max_size
        self.state = VoltState(self.data_dir)
        self.services: Optional[VoltServices] = None
        self.port: Optional[int] = None
        self._server: Optional[VoltServer] = None
        self._background: Optional[BackgroundLoop] = None

    # ------------------------------------------------------------ lifecycle

    @property
    def is_running(self) -> bool:
        return self._server is not None

    @property
    def http_address(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with TLS) once started."""
        if self._server is None or self._server.http_address is None:
            raise RuntimeError("the LocalVolt is not running: start() it first")
        return self._server.http_address

    async def astart(self) -> LocalVolt:
        """Start serving on the running event loop."""
        if self._server is not None:
            return self
        services = VoltServices(self.data_dir, self.state.volt_id)
        server = VoltServer(self.state, services, max_size=self.max_size)
        context = server_ssl_context(self.state.tls) if self.tls else None
        try:
            self.port = await server.start(self.host, self.requested_port, context)
        except BaseException:
            await services.close()
            raise
        self.services, self._server = services, server
        return self

    async def astop(self) -> None:
        """Close every connection, stop the handlers' background work, release the port."""
        server, self._server = self._server, None
        if server is not None:
            try:
                await server.stop()
            finally:
                await server.services.close()
        if self._temporary and self._background is None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def start(self) -> LocalVolt:
        """Start serving on a background thread (the sync API)."""
        if self._server is not None:
            return self
        self._background = BackgroundLoop()
        try:
            self._background.run(self.astart(), timeout=60)
        except BaseException:
            self._background.stop()
            self._background = None
            raise
        return self

    def stop(self) -> None:
        """Stop serving; a temporary data directory is removed."""
        background, self._background = self._background, None
        if background is not None:
            try:
                background.run(self.astop(), timeout=30)
            finally:
                background.stop()
        if self._temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalVolt:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    async def __aenter__(self) -> LocalVolt:
        return await self.astart()

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.astop()

    def _on_loop(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function`` where the server runs (its loop thread, in sync mode)."""
        if self._background is not None:
            return self._background.call(function, *args, timeout=60)
        return function(*args)

    # ------------------------------------------------------------ identities and configs

    def register(self, name: str = "owner", access: str = "owner") -> IdentityRecord:
        """Register (or reuse) identity ``name`` and make sure its home folder exists."""
        record = self.state.register(name, access)
        if self.services is not None:
            self._on_loop(self.services.ensure_home, record.identity())
        return record

    def client_config(
        self,
        name: str = "owner",
        protocol: str = "v2",
        access: str = "owner",
        passphrase: str | bytes | None = None,
    ) -> dict:
        """A fusebox-format client config for identity ``name`` (registered if new).

        ``protocol`` ``"v1"`` gives RSA keys (for ``volt_client_web`` 0.1.14),
        ``"v2"`` Ed25519 keys and a session id. A ``passphrase`` encrypts the key.
        """
        record = self.register(name, access)
        return self.state.client_config(
            record, protocol=protocol, http_address=self.http_address, passphrase=passphrase
        )

    def write_client_config(self, path: str | pathlib.Path, **options: Any) -> pathlib.Path:
        """Write :meth:`client_config` as JSON to ``path`` with mode 0600; returns the path."""
        path = pathlib.Path(path)
        write_private_text(path, json.dumps(self.client_config(**options), indent=2) + "\n")
        return path

    def load_sample(self) -> dict:
        """Create the sample database and wire (once) in the owner's home; returns their ids."""
        if self.services is None:
            raise RuntimeError("the LocalVolt is not running: start() it first")
        owner = self.register("owner", "owner")
        return self._on_loop(self.services.load_sample, owner.identity())

    def __repr__(self) -> str:
        where = self._server.http_address if self._server is not None else "stopped"
        return f"LocalVolt({self.state.volt_id!r}, {where})"
