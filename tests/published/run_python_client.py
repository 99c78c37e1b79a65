"""Drive the published Python client ``volt_client_web`` 0.1.14 against a running Volt.

Runs inside the client's own virtual environment (see ``envs.py``), never in
ours: it imports nothing from volt_data. Usage::

    python run_python_client.py CONFIG.json FACTS.json

FACTS holds ``wire_id``, ``database_id``, ``statements`` (name -> SQL),
``missing_id``, ``publish_wire_id`` and ``publish_chunks`` (texts to publish).
The steps run one after another, because 0.1.14 loses frames when calls
overlap (protocol reference §7), and each has a timeout, because a lost frame
shows up as a call that never ends.
Every streaming call gets an ``error`` handler: without one pyee raises
inside the client's reader loop. The result is one JSON object on stdout;
whatever the client prints itself is sent to stderr.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sys
import time
import traceback

from volt_client_web import VoltClient

STEP_TIMEOUT = 10.0


def _failure(exc: BaseException) -> dict:
    return {"ok": False, "error_type": type(exc).__name__, "error": str(exc),
            "traceback": traceback.format_exc()}


async def _wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _events(call) -> dict:
    """Attach data/error/end handlers that record what the call reports."""
    seen: dict = {"data": [], "errors": [], "ended": False}
    call.on("data", lambda payload: seen["data"].append(payload))
    call.on("error", lambda error: seen["errors"].append(f"{type(error).__name__}: {error}"))

    def ended() -> None:
        seen["ended"] = True

    call.on("end", ended)
    return seen


async def unary_home(client: VoltClient, home_id: str) -> dict:
    response = await asyncio.wait_for(client.GetResource({"resource_id": home_id}), STEP_TIMEOUT)
    return {"ok": True, "response": response}


async def status_error(client: VoltClient, missing_id: str) -> dict:
    try:
        response = await asyncio.wait_for(client.GetResource({"resource_id": missing_id}), STEP_TIMEOUT)
    except asyncio.TimeoutError:
        raise
    except Exception as exc:  # the expected path: the call rejects with the status message
        return {"ok": True, "raised": True, "error_type": type(exc).__name__, "error": str(exc)}
    return {"ok": True, "raised": False, "response": response}


async def sql_rows(client: VoltClient, database_id: str, statements: dict[str, str]) -> dict:
    """Run each named statement with SqlExecuteJSON (0.1.14 sends the flat, pre-oneof request)."""
    tables = {}
    for name, statement in statements.items():
        tables[name] = await asyncio.wait_for(
            client.SqlExecuteJSON({"database_id": database_id, "statement": statement}), STEP_TIMEOUT
        )
    return {"ok": True, "tables": tables}


async def subscribe(client: VoltClient, wire_id: str, wanted: int = 2) -> dict:
    call = await client.SubscribeWire({"wire_id": wire_id})
    seen = _events(call)
    got_chunks = await _wait_until(lambda: len(seen["data"]) >= wanted or seen["errors"], STEP_TIMEOUT)
    await call.send({"stop": True})
    ended = await _wait_until(lambda: seen["ended"] or seen["errors"], STEP_TIMEOUT)
    chunks = [base64.b64decode(item["chunk"]).decode("utf-8", "replace")
              for item in seen["data"] if "chunk" in item]
    return {"ok": got_chunks and ended and not seen["errors"], "chunks": chunks, "ended": seen["ended"],
            "errors": seen["errors"], "payloads_without_chunk": [d for d in seen["data"] if "chunk" not in d]}


async def publish(client: VoltClient, wire_id: str, texts: list[str], home_id: str) -> dict:
    call = await client.PublishWire({"wire_id": wire_id})
    seen = _events(call)
    for text in texts:
        await call.send({"chunk": base64.b64encode(text.encode()).decode()})
    await call.end()
    # 0.1.14's end() cancels this call's own reader (§7), so the Volt's reply is
    # only read while another call is reading: a unary call pumps the socket.
    pump = await asyncio.wait_for(client.GetResource({"resource_id": home_id}), STEP_TIMEOUT)
    ended = await _wait_until(lambda: seen["ended"] or seen["errors"], 2.0)
    return {"ok": not seen["errors"], "ended": ended and seen["ended"], "replies": seen["data"],
            "errors": seen["errors"], "pump_call_ok": bool(pump)}


async def unknown_method(client: VoltClient) -> dict:
    """A path the client still knows but the current schema dropped (reference §7): a method_end error."""
    try:
        response = await asyncio.wait_for(client.GetSettings({}), STEP_TIMEOUT)
    except asyncio.TimeoutError:
        raise
    except Exception as exc:
        return {"ok": True, "raised": True, "error_type": type(exc).__name__, "error": str(exc)}
    return {"ok": True, "raised": False, "response": response}


async def main(config: dict, facts: dict) -> dict:
    client = VoltClient(config)
    await asyncio.wait_for(client.initialise(), STEP_TIMEOUT)
    home_id = config["credential"]["client_id"]
    steps = {
        "unary": lambda: unary_home(client, home_id),
        "status_error": lambda: status_error(client, facts["missing_id"]),
        "sql": lambda: sql_rows(client, facts["database_id"], facts["statements"]),
        "subscribe": lambda: subscribe(client, facts["wire_id"]),
        "publish": lambda: publish(client, facts["publish_wire_id"], facts["publish_chunks"], home_id),
        "unknown_method": lambda: unknown_method(client),  # last: 0.1.14 may lose the next call after it
    }
    result: dict = {"client": "volt_client_web 0.1.14"}
    for name, step in steps.items():
        began = time.monotonic()
        try:
            result[name] = await step()
        except BaseException as exc:  # a timeout or client failure is a finding, not a crash
            result[name] = _failure(exc)
        result[name]["seconds"] = round(time.monotonic() - began, 3)
    await client.websocket.close()
    return result


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        client_config = json.load(handle)
    with open(sys.argv[2]) as handle:
        sample_facts = json.load(handle)
    with contextlib.redirect_stdout(sys.stderr):  # the client prints its own diagnostics
        outcome = asyncio.run(main(client_config, sample_facts))
    print(json.dumps(outcome))
