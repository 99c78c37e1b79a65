"""The inner (encrypted) messages both generations carry: method_invoke,
method_payload, method_end. Field names are those of ``remote.proto``.

Request and response bodies travel as JSON *strings* inside these objects
(``json_request`` / ``json_payload``); clients parse them a second time.
"""
from __future__ import annotations

from dataclasses import dataclass

import orjson

from volt_data.errors import ProtocolError
from volt_data.protocol.json_object import load_json_object

INVOKE = "invoke"
PAYLOAD = "payload"
END = "end"


@dataclass(frozen=True)
class InnerMessage:
    """One decrypted inner message.

    ``kind`` is ``"invoke"``, ``"payload"`` or ``"end"``; ``json`` is the request
    or response JSON text (invoke/payload); ``error`` the text of a failed end.
    """

    kind: str
    json: str | None = None
    method: str | None = None
    service_id: str | None = None
    error: str | None = None


def encode_invoke(method_path: str, json_request: str | None, service_id: str | None = None) -> bytes:
    body: dict = {"method_name": method_path, "json_request": json_request or "{}"}
    if service_id is not None:
        body["service_id"] = service_id
    return orjson.dumps({"method_invoke": body})


def encode_payload(json_text: str) -> bytes:
    return orjson.dumps({"method_payload": {"json_payload": json_text}})


def encode_end(error: str | None = None) -> bytes:
    body: dict = {"ended": True}
    if error is not None:
        body["error"] = error
    return orjson.dumps({"method_end": body})


def parse_inner(plaintext: bytes) -> InnerMessage:
    """Parse one decrypted inner message; malformed input is a ProtocolError."""
    message = load_json_object(plaintext, "inner message")
    if "method_payload" in message:
        body = message["method_payload"]
        text = body.get("json_payload") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise ProtocolError("method_payload.json_payload must be a JSON string")
        return InnerMessage(PAYLOAD, json=text)
    if "method_end" in message:
        body = message["method_end"]
        if not isinstance(body, dict):
            raise ProtocolError("method_end must be an object")
        error = body.get("error")
        return InnerMessage(END, error=str(error) if error else None)
    if "method_invoke" in message:
        body = message["method_invoke"]
        if not isinstance(body, dict) or not isinstance(body.get("method_name"), str):
            raise ProtocolError("method_invoke.method_name must be a string")
        request = body.get("json_request")
        if request is not None and not isinstance(request, str):
            raise ProtocolError("method_invoke.json_request must be a JSON string")
        service_id = body.get("service_id")
        return InnerMessage(
            INVOKE,
            json=request or "{}",
            method=body["method_name"],
            service_id=service_id if isinstance(service_id, str) else None,
        )
    raise ProtocolError("inner message has no method_invoke, method_payload or method_end")
