"""The examples of the ``volt_client_web`` 0.1.14 README, run against a local Volt.

Runs inside the 0.1.14 virtual environment (see ``envs.py``). It documents how
close the old client gets when a user follows its README (protocol reference
§1 "The seed example"):

* ``encrypted_key``: the README's config carries an ``ENCRYPTED PRIVATE KEY``;
  the client loads keys without a password.
* ``no_http_address``: the README's config has ``address`` but no ``http_address``.
* ``readme_calls``: with a usable config, the README's camelCase method names
  (``getResource``, ``sqlExecute``, ``subscribeWire``).
* ``pascal_case``: the same three examples with the names the class really has,
  keeping the README's requests (``resourceId`` in lowerCamelCase, the flat
  ``database_id``/``statement`` request) and its event handlers.

Usage: ``python run_seed_readme.py CONFIG.json ENCRYPTED_CONFIG.json FACTS.json``;
one JSON object on stdout, the client's own prints go to stderr.
"""
from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import sys
import time
import traceback

from volt_client_web import VoltClient

TIMEOUT = 10.0


def _failure(exc: BaseException) -> dict:
    return {"ok": False, "error_type": type(exc).__name__, "error": str(exc),
            "traceback": traceback.format_exc()}


async def _until(predicate, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def initialise_only(config: dict) -> dict:
    volt_client = VoltClient(config)
    await asyncio.wait_for(volt_client.initialise(), TIMEOUT)
    await volt_client.websocket.close()
    return {"ok": True}


async def readme_calls(config: dict, facts: dict) -> dict:
    """The README's code as printed: camelCase method names."""
    volt_client = VoltClient(config)
    await volt_client.initialise()
    outcome = {}
    attempts = {
        "getResource": lambda: volt_client.getResource({"resourceId": config["credential"]["client_id"]}),
        "sqlExecute": lambda: volt_client.sqlExecute(
            {"database_id": facts["database_id"], "statement": facts["readme_statement"]}),
        "subscribeWire": lambda: volt_client.subscribeWire({"wire_id": facts["wire_id"]}),
    }
    for name, attempt in attempts.items():
        try:
            outcome[name] = {"ok": True, "result": await asyncio.wait_for(attempt(), TIMEOUT)}
        except BaseException as exc:
            outcome[name] = _failure(exc)
    await volt_client.websocket.close()
    return outcome


async def pascal_case(config: dict, facts: dict) -> dict:
    """The README's examples with the method names 0.1.14 actually defines."""
    volt_client = VoltClient(config)
    await volt_client.initialise()
    outcome: dict = {}

    try:
        result = await asyncio.wait_for(
            volt_client.GetResource({"resourceId": config["credential"]["client_id"]}), TIMEOUT)
        outcome["GetResource"] = {"ok": True, "resource": result["resource"]}
    except BaseException as exc:
        outcome["GetResource"] = _failure(exc)

    seen: dict = {"errors": [], "data": [], "ended": False}
    call = await volt_client.SqlExecute(
        {"database_id": facts["database_id"], "statement": facts["readme_statement"]})

    @call.on("error")
    def error_handler(error):
        seen["errors"].append(str(error))

    @call.on("data")
    def data_handler(response):
        seen["data"].append(response)

    @call.on("end")
    def end_handler():
        seen["ended"] = True

    finished = await _until(lambda: seen["ended"] or seen["errors"])
    outcome["SqlExecute"] = {"ok": finished and not seen["errors"], "ended": seen["ended"],
                             "errors": seen["errors"], "responses": len(seen["data"]),
                             "first_responses": seen["data"][:2]}

    wire: dict = {"errors": [], "data": [], "ended": False}
    sub = await volt_client.SubscribeWire({"wire_id": facts["wire_id"]})

    @sub.on("error")
    def wire_error_handler(error):
        wire["errors"].append(str(error))

    @sub.on("data")
    def wire_data_handler(payload):
        wire["data"].append(payload)

    @sub.on("end")
    def wire_end_handler():
        wire["ended"] = True

    got = await _until(lambda: len(wire["data"]) >= 2 or wire["errors"])
    await sub.send({"stop": True})
    ended = await _until(lambda: wire["ended"] or wire["errors"])
    outcome["SubscribeWire"] = {"ok": got and ended and not wire["errors"], "ended": wire["ended"],
                                "errors": wire["errors"], "chunks": len(wire["data"])}
    await volt_client.websocket.close()
    return outcome


async def main(config: dict, encrypted: dict, facts: dict) -> dict:
    without_address = copy.deepcopy(config)
    without_address["volt"].pop("http_address", None)
    without_address["volt"]["address"] = "127.0.0.1:1"  # as in the README: a gRPC address only
    result = {}
    scenarios = {
        "encrypted_key": lambda: initialise_only(encrypted),
        "no_http_address": lambda: initialise_only(without_address),
        "readme_calls": lambda: readme_calls(config, facts),
        "pascal_case": lambda: pascal_case(config, facts),
    }
    for name, scenario in scenarios.items():
        try:
            result[name] = await asyncio.wait_for(scenario(), 4 * TIMEOUT)
        except BaseException as exc:
            result[name] = _failure(exc)
    return result


if __name__ == "__main__":
    loaded = []
    for path in sys.argv[1:4]:
        with open(path) as handle:
            loaded.append(json.load(handle))
    with contextlib.redirect_stdout(sys.stderr):
        report = asyncio.run(main(*loaded))
    print(json.dumps(report, default=str))
