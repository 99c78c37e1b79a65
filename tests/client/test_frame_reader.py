"""RoutingClientConnection against a real websockets server: every message arrives,
in order, whether routed directly or handed back to websockets."""
from __future__ import annotations

import asyncio

import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from volt_data.client.frame_reader import RoutingClientConnection

pytestmark = pytest.mark.asyncio


async def run_against(handler, *, raw_text: bool = False) -> tuple[list, list, RoutingClientConnection]:
    """Connect with routing on, say "go", collect routed messages and what websockets delivers."""
    routed: list = []
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", create_connection=RoutingClientConnection, compression=None) as client:
            assert client.route_messages_to(routed.extend, raw_text=raw_text)
            await client.send("go")
            delivered = []
            try:
                async for message in client:
                    delivered.append(message)
            except websockets.exceptions.ConnectionClosedError:
                pass
    return routed, delivered, client


async def test_data_frames_of_every_length_encoding_are_routed_in_order() -> None:
    many = [bytes([index % 256]) * (index % 700) for index in range(3000)]  # > 1 MiB: frames span reads

    async def handler(ws) -> None:
        await ws.recv()
        await ws.send("text é")
        await ws.send(b"")
        await ws.send(b"y" * 300)  # 16-bit length
        await ws.send(b"x" * 70_000)  # 64-bit length
        for message in many:
            await ws.send(message)
        await ws.ping()
        await ws.send("after the ping")

    routed, delivered, client = await run_against(handler)
    assert routed == ["text é", b"", b"y" * 300, b"x" * 70_000, *many, "after the ping"]
    assert delivered == []
    assert client.close_code == 1000


async def test_a_fragmented_message_and_everything_after_it_go_through_websockets() -> None:
    async def handler(ws) -> None:
        await ws.recv()
        await ws.send("routed")
        await ws.send(["frag", "mented"])
        await ws.send(b"after")

    routed, delivered, _ = await run_against(handler)
    assert routed == ["routed"]
    assert delivered == ["fragmented", b"after"]


async def test_text_that_is_not_utf8_closes_the_connection_as_websockets_does() -> None:
    async def handler(ws) -> None:
        await ws.recv()
        await ws.send("fine")
        ws.protocol.send_text(b"\xff\xfe")  # websockets would never send this itself
        ws.send_data()
        await asyncio.sleep(0.5)

    routed, delivered, client = await run_against(handler)
    assert routed == ["fine"]
    assert delivered == []
    assert client.protocol.close_sent.code == 1007  # invalid frame payload data, as plain websockets


async def test_a_frame_over_max_size_closes_the_connection_with_1009() -> None:
    async def handler(ws) -> None:
        await ws.recv()
        await ws.send(b"small")
        await ws.send(b"z" * 2_000_000)
        await asyncio.sleep(0.5)

    routed: list = []
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(
            f"ws://127.0.0.1:{port}", create_connection=RoutingClientConnection, compression=None, max_size=1_000_000
        ) as client:
            assert client.route_messages_to(routed.extend)
            await client.send("go")
            with pytest.raises(websockets.exceptions.ConnectionClosedError):
                await client.recv()
    assert routed == [b"small"]
    assert client.protocol.close_sent.code == 1009  # message too big, as plain websockets


async def test_raw_text_routes_text_as_bytes_and_hands_back_binary() -> None:
    async def handler(ws) -> None:
        await ws.recv()
        await ws.send('{"invoke_id":1,"json_payload":"QUJD"}')
        await ws.send("déjà")
        await ws.send(b"binary on a text-only connection")
        await ws.send("after")

    routed, delivered, _ = await run_against(handler, raw_text=True)
    assert routed == [b'{"invoke_id":1,"json_payload":"QUJD"}', "déjà".encode()]
    assert delivered == [b"binary on a text-only connection", "after"]
