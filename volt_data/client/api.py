"""``VoltClient``: every RPC of the Volt API as a method, in three naming styles.

The methods are generated from the schema's method table, not written by hand:
``client.getResource``, ``client.GetResource`` and ``client.get_resource`` are
the same call. Unary methods return the response dict; streaming methods
return a :class:`~volt_data.client.calls.Call`.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from volt_data.client.calls import Call
from volt_data.client.connection import Connection
from volt_data.config import ConfigSource, VoltConfig, load_config
from volt_data.client.subscription import ResumingSubscription
from volt_data.errors import ConnectionLostError, RequestError
from volt_data.schema import MethodInfo, check_request, method_attribute_names, resolve_method

logger = logging.getLogger("volt_data.client")

#: Streaming methods that start without a request: their first ``send()`` opens them.
DEFERRED_OPEN = frozenset({"Connect", "UploadFile"})


class VoltClient:
    """An asynchronous client of one Volt.

    ``config`` is a fusebox config (dict, JSON file path, :class:`VoltConfig`, or
    None for ``$VOLT_CONFIG``); ``passphrase`` decrypts an encrypted key.
    Call :meth:`initialise` (or use ``async with``) before making calls.
    """

    def __init__(
        self,
        config: ConfigSource = None,
        *,
        passphrase: str | bytes | None = None,
        timeout: float | None = None,
        ssl_context=None,
    ) -> None:
        self.config: VoltConfig = load_config(config, passphrase=passphrase)
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._connection: Connection | None = None
        self._connect_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        state = "open" if self.is_connected else "closed"
        return f"<VoltClient {self.config.client_name or ''} -> {self.config.volt_id} ({self.config.generation}, {state})>"

    # ------------------------------------------------------------ connection

    async def initialise(self, override_address: str | None = None, **_legacy: Any) -> "VoltClient":
        """Connect to the Volt. Extra keyword arguments of the old client
        (``receive_delay``, ``quietMode``) are accepted and ignored."""
        url = self.config.websocket_url(override_address)
        self._connection = Connection(self.config, url=url, ssl_context=self._ssl_context)
        await self._connection.open()
        return self

    initialize = initialise

    async def reconnect(self) -> None:
        """Open a new socket (open calls of the old one have already failed)."""
        old = self._connection
        if old is not None:
            await old.close()
        self._connection = Connection(self.config, url=old.url if old else None, ssl_context=self._ssl_context)
        await self._connection.open()

    async def _ready_connection(self) -> Connection:
        if self._connection is None:
            raise ConnectionLostError("client is not initialised: await client.initialise() first")
        if not self._connection.is_open:
            if self._connect_lock is None:
                self._connect_lock = asyncio.Lock()
            async with self._connect_lock:
                if not self._connection.is_open:
                    logger.info("reconnecting to %s", self._connection.url)
                    await self.reconnect()
        return self._connection

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and self._connection.is_open

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def __aenter__(self) -> "VoltClient":
        if not self.is_connected:
            await self.initialise()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    # ----------------------------------------------------------------- calls

    async def unary_call(
        self, method: str | MethodInfo, request: dict | None = None, *, timeout: float | None = None
    ) -> dict:
        """Call a unary method and return its response dict (raising CallError)."""
        info = method if isinstance(method, MethodInfo) else resolve_method(method)
        connection = await self._ready_connection()
        call = await connection.start_call(info, request)
        response = await call.result(timeout if timeout is not None else self.timeout)
        return response if response is not None else {}

    def streaming_call(
        self,
        method: str | MethodInfo,
        request: dict | None = None,
        *,
        batch_mode: bool = False,
        resume: bool = False,
    ) -> "PendingCall":
        """Open a streaming call. ``await`` the result to get the :class:`Call`.

        ``resume=True`` (SubscribeWire only) subscribes again after a lost
        connection instead of failing (see :class:`ResumingSubscription`).
        """
        info = method if isinstance(method, MethodInfo) else resolve_method(method)
        if resume:
            if info.name != "SubscribeWire":
                raise RequestError(f"resume=True is only for SubscribeWire, not {info.name}")
            check_request(info, request)
            return PendingCall(ResumingSubscription(self, info, request).start())
        return PendingCall(self._open_stream(info, request, batch_mode))

    async def _open_stream(self, info: MethodInfo, request: dict | None, batch_mode: bool) -> Call:
        connection = await self._ready_connection()
        defer = request is None and info.name in DEFERRED_OPEN
        return await connection.start_call(info, request, defer_open=defer, batch_mode=batch_mode)

    async def call(self, method: str | MethodInfo, request: dict | None = None, **kwargs: Any):
        """Call any method by name: unary -> response dict, streaming -> Call."""
        info = method if isinstance(method, MethodInfo) else resolve_method(method)
        if info.is_unary:
            return await self.unary_call(info, request, **kwargs)
        return await self.streaming_call(info, request, **kwargs)

    # -------------------------------------------------- old client's helper

    async def SqlExecuteJSON(self, request: dict) -> list[dict]:
        """Run a statement and return its rows as dicts keyed by column name
        (the old client's helper; values picked by each cell's key, ints exact)."""
        from volt_data.client.rows import rows_as_dicts

        call = await self.streaming_call("Execute", request)
        responses = [response async for response in call]
        return rows_as_dicts(responses)

    sqlExecuteJSON = sql_execute_json = SqlExecuteJSON


class PendingCall:
    """A streaming call being opened. ``await`` it for the :class:`Call`.

    This keeps the old client's ``call = await client.subscribeWire(...)`` style
    while letting ``async with``/``async for`` users write
    ``async for r in await client.execute(...)``.
    """

    def __init__(self, opening) -> None:
        self._task = asyncio.ensure_future(opening)

    def __await__(self):
        return self._task.__await__()


def _make_method(info: MethodInfo):
    if info.is_unary:

        async def unary(self: VoltClient, request: dict | None = None, *, timeout: float | None = None) -> dict:
            return await self.unary_call(info, request, timeout=timeout)

        method = unary
    else:

        def streaming(
            self: VoltClient, request: dict | None = None, *, batch_mode: bool = False, resume: bool = False
        ) -> PendingCall:
            return self.streaming_call(info, request, batch_mode=batch_mode, resume=resume)

        method = streaming
    method.__doc__ = (
        f"{info.service}.{info.name} ({info.kind}): {info.request_type.rsplit('.', 1)[-1]} -> "
        f"{info.response_type.rsplit('.', 1)[-1]}"
    )
    return method


def _install_methods() -> None:
    for attribute, info in method_attribute_names().items():
        if hasattr(VoltClient, attribute):
            continue  # our own helpers (e.g. SqlExecuteJSON) win
        function = _make_method(info)
        function.__name__ = attribute
        function.__qualname__ = f"VoltClient.{attribute}"
        setattr(VoltClient, attribute, function)


_install_methods()
