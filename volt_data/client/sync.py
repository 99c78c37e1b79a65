"""The synchronous facade: the async client, driven from any thread.

Every :class:`SyncVoltClient` runs its :class:`VoltClient` on one shared
background event-loop thread. Blocking calls hand their coroutine to that loop
and wait for the result, so the facade works the same in a script, under
pytest, and in Jupyter (where the kernel's own loop is already running and
must not be re-entered — the reason we do not patch asyncio with nest_asyncio).

The methods are generated from the async client's method table.
"""
from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
from typing import Any, Callable, Coroutine, Iterator

from volt_data.client.api import VoltClient
from volt_data.client.calls import Call
from volt_data.client.subscription import ResumingSubscription
from volt_data.config import ConfigSource
from volt_data.errors import CallCancelledError, CallTimeoutError
from volt_data.schema import MethodInfo, method_attribute_names


class BackgroundLoop:
    """An event loop running forever on a daemon thread."""

    def __init__(self, name: str = "volt-data-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def run(self, coroutine: Coroutine, timeout: float | None = None) -> Any:
        """Run ``coroutine`` on the loop and wait for it. Ctrl-C cancels it there."""
        if self.in_loop_thread:
            coroutine.close()
            raise RuntimeError("blocking volt_data call made from inside its own event loop; use the async API")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise CallTimeoutError(f"no answer within {timeout} s") from None
        except KeyboardInterrupt:
            future.cancel()
            raise

    def submit(self, coroutine: Coroutine) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def call_soon(self, function: Callable, *args: Any) -> None:
        self.loop.call_soon_threadsafe(function, *args)


_shared_loop: BackgroundLoop | None = None
_shared_lock = threading.Lock()


def background_loop() -> BackgroundLoop:
    """The process-wide loop that sync clients share."""
    global _shared_loop
    with _shared_lock:
        if _shared_loop is None:
            _shared_loop = BackgroundLoop()
        return _shared_loop


class SyncCall:
    """Blocking twin of :class:`~volt_data.client.calls.Call`.

    Handlers registered with :meth:`on` run on the background loop's thread.
    """

    def __init__(self, call: Call, runner: BackgroundLoop) -> None:
        self._call = call
        self._runner = runner

    @property
    def call(self) -> Call:
        return self._call

    @property
    def method(self) -> MethodInfo:
        return self._call.method

    @property
    def done(self) -> bool:
        return self._call.done

    def on(self, event: str, handler: Callable | None = None):
        def register(function: Callable) -> Callable:
            done = threading.Event()

            def attach() -> None:
                self._call.on(event, function)
                done.set()

            if self._runner.in_loop_thread:
                attach()
            else:
                self._runner.call_soon(attach)
                done.wait()
            return function

        return register(handler) if handler is not None else register

    def send(self, request: dict | None = None) -> None:
        self._runner.run(self._call.send(request))

    def end(self) -> None:
        self._runner.run(self._call.end())

    def cancel(self) -> None:
        self._runner.run(self._call.cancel())

    def wait(self, timeout: float | None = None) -> Any:
        return self._runner.run(self._call.wait(timeout))

    def __iter__(self) -> Iterator[Any]:
        iterator = self._call.__aiter__()
        while True:
            try:
                yield self._runner.run(iterator.__anext__())
            except StopAsyncIteration:
                return
            except KeyboardInterrupt:
                self._runner.run(self._call.cancel())
                raise CallCancelledError(f"{self.method.name} was interrupted") from None


class SyncVoltClient:
    """A :class:`VoltClient` you can use without ``await``.

    ``SyncVoltClient(config)`` connects at once (``connect=False`` to defer);
    every API method blocks until its response arrives. Streaming methods return
    a :class:`SyncCall`.
    """

    def __init__(
        self,
        config: ConfigSource = None,
        *,
        passphrase: str | bytes | None = None,
        timeout: float | None = None,
        connect: bool = True,
        runner: BackgroundLoop | None = None,
        **client_options: Any,
    ) -> None:
        self._runner = runner or background_loop()
        self.aclient = VoltClient(config, passphrase=passphrase, timeout=timeout, **client_options)
        self.config = self.aclient.config
        if connect:
            self.initialise()

    def __repr__(self) -> str:
        return repr(self.aclient).replace("<VoltClient", "<SyncVoltClient", 1)

    @property
    def runner(self) -> BackgroundLoop:
        return self._runner

    def run(self, coroutine: Coroutine, timeout: float | None = None) -> Any:
        """Run any coroutine of the async client on its loop (escape hatch)."""
        return self._runner.run(coroutine, timeout)

    def initialise(self, override_address: str | None = None) -> "SyncVoltClient":
        self._runner.run(self.aclient.initialise(override_address))
        return self

    initialize = initialise

    def reconnect(self) -> None:
        self._runner.run(self.aclient.reconnect())

    @property
    def is_connected(self) -> bool:
        return self.aclient.is_connected

    def close(self) -> None:
        self._runner.run(self.aclient.close())

    def __enter__(self) -> "SyncVoltClient":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def unary_call(self, method: str | MethodInfo, request: dict | None = None, *, timeout: float | None = None):
        return self._runner.run(self.aclient.unary_call(method, request, timeout=timeout))

    def streaming_call(self, method: str | MethodInfo, request: dict | None = None, **kwargs: Any) -> SyncCall:
        async def open_call() -> Call:
            return await self.aclient.streaming_call(method, request, **kwargs)

        return SyncCall(self._runner.run(open_call()), self._runner)

    def call(self, method: str | MethodInfo, request: dict | None = None, **kwargs: Any):
        async def any_call():
            return await self.aclient.call(method, request, **kwargs)

        result = self._runner.run(any_call())
        return SyncCall(result, self._runner) if isinstance(result, (Call, ResumingSubscription)) else result

    def SqlExecuteJSON(self, request: dict) -> list[dict]:
        return self._runner.run(self.aclient.SqlExecuteJSON(request))

    sqlExecuteJSON = sql_execute_json = SqlExecuteJSON


def _make_sync_method(info: MethodInfo):
    if info.is_unary:

        def unary(self: SyncVoltClient, request: dict | None = None, *, timeout: float | None = None) -> dict:
            return self.unary_call(info, request, timeout=timeout)

        method = unary
    else:

        def streaming(self: SyncVoltClient, request: dict | None = None, **kwargs: Any) -> SyncCall:
            return self.streaming_call(info, request, **kwargs)

        method = streaming
    return method


def _install_sync_methods() -> None:
    for attribute, info in method_attribute_names().items():
        if hasattr(SyncVoltClient, attribute):
            continue
        function = _make_sync_method(info)
        function.__name__ = attribute
        function.__qualname__ = f"SyncVoltClient.{attribute}"
        function.__doc__ = getattr(VoltClient, attribute).__doc__
        setattr(SyncVoltClient, attribute, function)


_install_sync_methods()


@atexit.register
def _stop_shared_loop() -> None:  # let open sockets close instead of being torn down mid-frame
    loop = _shared_loop.loop if _shared_loop else None
    if loop is not None and loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
