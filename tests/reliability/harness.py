"""Fault injection for the reliability tests: a cuttable TCP proxy and a killable Volt process.

:class:`CuttableProxy` forwards loopback TCP to a Volt and can ``cut()`` every
connection abruptly (no close frame, no FIN: the transports are aborted, as
when a network path dies) or ``stall()`` it (bytes are swallowed, the sockets
stay open: a black hole). :class:`VoltProcess` runs ``volt-data serve`` in a
subprocess on a fixed port so it can be ``kill -9``-ed and restarted on the
same data directory and address.
"""
from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def via(config: dict, port: int) -> dict:
    """``config`` pointed at ``127.0.0.1:port`` (the proxy) instead of the Volt."""
    volt = dict(config["volt"], http_address=f"http://127.0.0.1:{port}", address=f"127.0.0.1:{port}")
    return dict(config, volt=volt)


class CuttableProxy:
    """A loopback TCP proxy whose connections can be cut or stalled on demand."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port: int | None = None
        self.stalled = False
        self._server: asyncio.Server | None = None
        self._transports: list[asyncio.Transport] = []
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> "CuttableProxy":
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, client_reader, client_writer) -> None:
        try:
            volt_reader, volt_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        self._transports += [client_writer.transport, volt_writer.transport]
        for pump in (self._pump(client_reader, volt_writer), self._pump(volt_reader, client_writer)):
            task = asyncio.ensure_future(pump)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if not self.stalled:
                    writer.write(data)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()

    def cut(self) -> None:
        """Abort every proxied connection at once (RST, no websocket close)."""
        for transport in self._transports:
            transport.abort()
        self._transports.clear()

    def stall(self, stalled: bool = True) -> None:
        """Swallow all traffic from now on (sockets stay open) — or resume forwarding."""
        self.stalled = stalled

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()


class VoltProcess:
    """``volt-data serve`` in a subprocess on a fixed port, killable with SIGKILL."""

    def __init__(self, data_dir: pathlib.Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.config_path = data_dir / "owner.json"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> dict:
        """Start serving and return the owner's config (once clients can connect)."""
        command = [sys.executable, "-m", "volt_data.cli", "serve", "--data-dir", str(self.data_dir),
                   "--port", str(self.port), "--config-out", str(self.config_path)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                        env=dict(os.environ, PYTHONUNBUFFERED="1"))
        deadline = time.monotonic() + timeout
        for line in self.process.stdout:
            if line.startswith("config:"):
                return json.loads(pathlib.Path(line.split(":", 1)[1].strip()).read_text())
            if time.monotonic() > deadline:
                break
        self.kill()
        raise RuntimeError("volt-data serve did not print its config line")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no cleanup, no close frames, no checkpoint — a crash."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def rss_bytes(self) -> int:
        """Resident set size of the server process (Linux /proc)."""
        return rss_bytes(self.pid)


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of ``pid`` (this process by default), from /proc."""
    status = pathlib.Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc status")
