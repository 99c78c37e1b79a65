"""Authentication and access, over real sockets: refused requests are logged and never executed.

Complements ``tests/local/test_server_auth.py`` (forged signature, unknown key
or session, expired token, wrong audience, tampered ciphertext, garbage) with
not-yet-valid and replayed tokens, frames aimed at another connection's call,
and the access rules as a user meets them through :class:`VoltClient`.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import time

import pytest

from tests.local.server_harness import Wire, session_for, ws_url
from volt_data import CallError, VoltClient
from volt_data.protocol.envelope import encode_payload
from volt_data.protocol.tokens import CLOCK_LEEWAY_SECONDS, TOKEN_SLACK_SECONDS
from volt_data.schema import resolve_method

EXECUTE = resolve_method("Execute").path
SERVER_LOG = "volt_data.local.server"


async def _new_database(owner_config: dict, prefix: str) -> str:
    async with VoltClient(owner_config) as owner:
        created = await owner.create_database({"name": f"{prefix}-{time.monotonic_ns()}"})
        database_id = created["resource"]["id"]
        await owner.sql_execute_json({"start": {"database_id": database_id,
                                                "statement": "CREATE TABLE t (x INTEGER)"}})
        return database_id


async def _count(config: dict, database_id: str) -> int:
    async with VoltClient(config) as client:
        rows = await client.sql_execute_json({"start": {"database_id": database_id,
                                                        "statement": "SELECT count(*) AS n FROM t"}})
        return rows[0]["n"]


async def _record_accepted_call(owner_config: dict, session, request: str) -> list:
    """Run one call to its accepted end and return the exact frames the client sent."""
    first = await Wire.open(ws_url(owner_config))
    recorded: list = []
    send = first.websocket.send

    async def recording_send(frame):
        recorded.append(frame)
        await send(frame)

    first.websocket.send = recording_send
    try:
        accepted = await first.call(session, EXECUTE, request)
    finally:
        await first.close()
    assert accepted.ended and accepted.end_error is None, accepted
    return recorded


async def _replay_and_expect_refusal(owner_config: dict, session, recorded: list, reason: str, caplog) -> None:
    """Send recorded frames on a new connection; the Volt must refuse them, say why, and log it."""
    replay = await Wire.open(ws_url(owner_config))
    try:
        with caplog.at_level(logging.WARNING, logger=SERVER_LOG):
            for frame in recorded:
                await replay.websocket.send(frame)
            answer = session.receive(await asyncio.wait_for(replay.websocket.recv(), 5))
            if answer.kind == "sealed":  # v1: an encrypted method_end the legitimate client could read
                assert reason.encode() in session.open(1, [answer])[0]
            else:
                assert answer.kind == "envelope_error" and reason in answer.error
            await asyncio.sleep(0.2)  # any further replayed frame has been handled
    finally:
        await replay.close()
    assert _refusal_logged(caplog)


def _refusal_logged(caplog) -> bool:
    return any(r.levelno >= logging.WARNING and r.name == SERVER_LOG for r in caplog.records)


# ---------------------------------------------------------------------------- tokens

async def test_a_not_yet_valid_token_is_refused_logged_and_never_runs(local_volt, owner_config, generation, caplog):
    database_id = await _new_database(owner_config, "future")
    session = session_for(owner_config, clock=lambda: time.time() + 3600)
    wire = await Wire.open(ws_url(owner_config))
    try:
        with caplog.at_level(logging.WARNING, logger=SERVER_LOG):
            outcome = await wire.call(session, EXECUTE, {"start": {"database_id": database_id,
                                                                   "statement": "INSERT INTO t VALUES (1)"}})
    finally:
        await wire.close()
    refusal = outcome.end_error or outcome.envelope_error or ""
    assert "unauthenticated" in refusal and "not yet valid" in refusal
    assert _refusal_logged(caplog)
    assert await _count(owner_config, database_id) == 0


async def test_a_replayed_token_after_its_window_is_refused_logged_and_never_runs(
    local_volt, owner_config, generation, caplog
):
    """Record the exact frames of an accepted INSERT, let the token expire, replay them."""
    database_id = await _new_database(owner_config, "replay")
    # A token whose window closes ~1.5 s from now (issued as if a minute ago).
    shift = TOKEN_SLACK_SECONDS + CLOCK_LEEWAY_SECONDS - 1.5
    session = session_for(owner_config, clock=lambda: time.time() - shift)
    request = json.dumps({"start": {"database_id": database_id, "statement": "INSERT INTO t VALUES (1)"}})

    recorded = await _record_accepted_call(owner_config, session, request)
    assert await _count(owner_config, database_id) == 1

    await asyncio.sleep(2.0)  # the token's window has closed
    await _replay_and_expect_refusal(owner_config, session, recorded, "token has expired", caplog)
    assert await _count(owner_config, database_id) == 1  # the replay never executed


async def test_a_token_replayed_inside_its_window_is_refused_and_never_runs(
    local_volt, owner_config, generation, caplog
):
    """The exact frames of an accepted INSERT, replayed at once on another connection."""
    database_id = await _new_database(owner_config, "replay-now")
    session = session_for(owner_config)
    request = json.dumps({"start": {"database_id": database_id, "statement": "INSERT INTO t VALUES (1)"}})
    recorded = await _record_accepted_call(owner_config, session, request)

    await _replay_and_expect_refusal(owner_config, session, recorded, "already used", caplog)
    assert await _count(owner_config, database_id) == 1  # the replay never executed


# ---------------------------------------------------------------------------- another connection's call

async def test_frames_for_another_connections_call_are_refused_logged_and_never_run(
    local_volt, owner_config, generation, caplog
):
    database_id = await _new_database(owner_config, "cross")
    session = session_for(owner_config)
    owner_wire = await Wire.open(ws_url(owner_config))
    intruder_wire = await Wire.open(ws_url(owner_config))
    try:
        # Call 1 on the owner's connection: a transaction, waiting for its next statement.
        call_id = await owner_wire.start(session, EXECUTE, {"start": {
            "database_id": database_id, "transaction": True, "statement": "SELECT 1"}})
        # The same call id, correctly encrypted, but sent on another connection.
        insert = {"start": {"database_id": database_id, "statement": "INSERT INTO t VALUES (7)"}}
        with caplog.at_level(logging.WARNING, logger=SERVER_LOG):
            for frame in session.send(call_id, encode_payload(json.dumps(insert))):
                await intruder_wire.websocket.send(frame)
            answer = session.receive(await asyncio.wait_for(intruder_wire.websocket.recv(), 5))
        assert answer.kind == "envelope_error" and "not open" in answer.error
        assert _refusal_logged(caplog)
        # The owner's call is unharmed and ends normally; nothing was inserted.
        await owner_wire.send(session, call_id, {"end": {"commit_transaction": True}})
        outcome = await owner_wire.finish(session, call_id)
        assert outcome.ended and outcome.end_error is None
    finally:
        await owner_wire.close()
        await intruder_wire.close()
    assert await _count(owner_config, database_id) == 0


# ---------------------------------------------------------------------------- access rules

def _resource(local_volt, resource_id: str):
    return local_volt._on_loop(local_volt.services.store.get, resource_id)


async def test_a_read_only_identity_cannot_write_publish_or_change(local_volt, sample, owner_config, reader_config):
    database_id = await _new_database(owner_config, "readonly")
    local_volt._on_loop(local_volt.services.store.grant, database_id, reader_config["credential"]["client_id"], "write")
    async with VoltClient(reader_config) as reader:
        # even with a write grant, read-only access applies Volt-wide
        with pytest.raises(CallError, match="permission|read-only|readonly|denied") as error:
            await reader.sql_execute_json({"start": {"database_id": database_id,
                                                     "statement": "INSERT INTO t VALUES (1)"}})
        assert error.value.code in (7, 3)
        with pytest.raises(CallError):
            await reader.create_database({"name": "never-created"})
        with pytest.raises(CallError):
            await reader.save_resource({"resource": {"id": sample["database_id"], "description": "defaced"}})
        publish = await reader.publish_wire({"wire_id": sample["wire_id"]})
        await publish.send({"chunk": base64.b64encode(b"forged").decode()})
        await publish.end()
        with pytest.raises(CallError):
            await publish.wait(5)
        # reading still works
        rows = await reader.sql_execute_json({"start": {"database_id": sample["database_id"],
                                                        "statement": "SELECT count(*) AS n FROM sensors"}})
        assert rows[0]["n"] > 0
    assert await _count(owner_config, database_id) == 0
    assert "defaced" not in (_resource(local_volt, sample["database_id"]).description or "")
    home = reader_config["credential"]["client_id"]
    assert local_volt.services.store.find_child(home, "never-created") is None


async def test_a_writer_cannot_touch_anothers_resources_unless_granted(local_volt, sample, owner_config,
                                                                      writer_config):
    database_id = await _new_database(owner_config, "granted")
    insert = {"start": {"database_id": database_id, "statement": "INSERT INTO t VALUES (1)"}}
    async with VoltClient(writer_config) as writer:
        with pytest.raises(CallError):
            await writer.sql_execute_json(insert)
        with pytest.raises(CallError):
            await writer.save_resource({"resource": {"id": database_id, "description": "mine now"}})
        with pytest.raises(CallError):
            await writer.delete_resource({"resource_id": database_id})
        assert await _count(owner_config, database_id) == 0
        assert _resource(local_volt, database_id) is not None

        # the owner grants write access on that database: now the writer may
        local_volt._on_loop(local_volt.services.store.grant, database_id,
                            writer_config["credential"]["client_id"], "write")
        await writer.sql_execute_json(insert)
        assert await _count(owner_config, database_id) == 1
        # ... but still not on anything else of the owner's
        with pytest.raises(CallError):
            await writer.save_resource({"resource": {"id": sample["database_id"], "description": "defaced"}})
        # and its own resources are its to change
        own = await writer.create_database({"name": f"own-{time.monotonic_ns()}"})
        await writer.save_resource({"resource": {"id": own["resource"]["id"], "description": "changed"}})
