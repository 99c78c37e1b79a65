"""A wire subscriber built directly on volt_data's sans-I/O protocol core.

The published-client tests need an independent witness for ``PublishWire``:
something that is neither the client under test nor the server's own fan-out
code. This subscriber speaks v2 with :class:`~volt_data.protocol.session.ClientV2Session`
over a plain ``websockets`` sync connection, on a background thread, and keeps
every chunk it receives. Hence it also checks the local Volt's framing from a
third implementation's point of view.
"""
from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

from websockets.sync.client import connect

from volt_data.config import load_config
from volt_data.protocol import envelope
from volt_data.protocol.session import ENVELOPE_ERROR, KEY_EXCHANGE, client_session_for

SUBSCRIBE_WIRE = "/tdx.volt_api.volt.v1.WireAPI/SubscribeWire"
CALL_ID = 1


class CoreSubscriber:
    """Subscribe to one wire for the life of a ``with`` block; ``chunks`` fills in as data arrives."""

    def __init__(self, config: dict[str, Any], wire_id: str) -> None:
        self.config = load_config(config)
        self.wire_id = wire_id
        self.chunks: list[bytes] = []
        self.statuses: list[dict] = []
        self.end_error: str | None = None
        self.ended = threading.Event()
        self.subscribed = threading.Event()
        self.failure: BaseException | None = None
        self._session = client_session_for(
            self.config.private_key, self.config.volt_public_key, self.config.volt_id,
            session_id=self.config.session_id,
        )
        self._socket = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "CoreSubscriber":
        # Entered by hand (not a `with` block) because the connection outlives this method.
        self._socket = connect(self.config.websocket_url(), open_timeout=10, max_size=None).__enter__()
        invoke = envelope.encode_invoke(SUBSCRIBE_WIRE, json.dumps({"wire_id": self.wire_id}))
        for frame in self._session.open_call(CALL_ID, invoke):
            self._socket.send(frame)
        self._thread = threading.Thread(target=self._read, name="core-subscriber", daemon=True)
        self._thread.start()
        if not self.subscribed.wait(10):
            raise TimeoutError("the Volt did not complete the key exchange for SubscribeWire in 10 s")
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if not self.ended.is_set():
                stop = envelope.encode_payload(json.dumps({"stop": True}))
                for frame in self._session.send(CALL_ID, stop):
                    self._socket.send(frame)
                self.ended.wait(5)
        finally:
            self._socket.__exit__(None, None, None)
            if self._thread is not None:
                self._thread.join(5)

    def wait_for(self, texts: list[str], timeout: float = 10.0) -> bool:
        """True once every text in ``texts`` has arrived as a chunk (waits at most ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        wanted = {text.encode() for text in texts}
        while time.monotonic() < deadline:
            if wanted <= set(self.chunks) or self.ended.is_set():
                break
            time.sleep(0.02)
        return wanted <= set(self.chunks)

    def _read(self) -> None:
        try:
            for frame in self._socket:
                incoming = self._session.receive(frame)
                if incoming.kind == KEY_EXCHANGE:
                    for reply in self._session.accept_key_exchange(incoming):
                        self._socket.send(reply)
                    self.subscribed.set()
                elif incoming.kind == ENVELOPE_ERROR:
                    self.end_error = incoming.error
                    self.ended.set()
                else:
                    [plain] = self._session.open(incoming.call_id, [incoming])
                    self._take(envelope.parse_inner(plain))
        except BaseException as exc:  # the socket closing at __exit__ ends the loop too
            if not self.ended.is_set():
                self.failure = exc
        finally:
            self.subscribed.set()
            self.ended.set()

    def _take(self, inner: envelope.InnerMessage) -> None:
        if inner.kind == envelope.END:
            self.end_error = inner.error
            self.ended.set()
            return
        response = json.loads(inner.json or "{}")
        if "chunk" in response:
            self.chunks.append(base64.b64decode(response["chunk"]))
        if response.get("status"):
            self.statuses.append(response["status"])
