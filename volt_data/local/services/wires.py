"""Wires: SaveWire, PublishWire and SubscribeWire with in-memory fan-out.

A wire is a resource of kind ``volt:wire``. Every published chunk goes to
every current subscriber of that wire, in each publisher's order. Each
subscriber has a bounded queue. PublishWire callers are paced: once a
subscriber is :data:`PACE_HIGH_WATER` chunks behind, the publisher waits (at
most :data:`PACE_SECONDS` per chunk) until that subscriber has caught up, so a
publisher faster than its subscribers loses nothing for subscribers that keep
reading. Only a subscriber that stays stuck past that wait falls behind by
:data:`SUBSCRIBER_QUEUE_SIZE` chunks and then loses its *oldest* queued chunk
(with a logged warning): one dead reader never blocks a wire for good. Nothing is persisted; a subscriber sees chunks published after it
subscribed.
"""
from __future__ import annotations

import asyncio
import base64
import logging
from collections import defaultdict

from volt_data.local.call import INVALID_ARGUMENTS, PERMISSION_DENIED, Handler, Identity, ServerCall, StatusError
from volt_data.local.services.resources import create_or_update
from volt_data.local.services.tree import Resource, ResourceStore
from volt_data.schema import message_to_json
from volt_data.schema.tdx.volt_api.volt.v1 import wire_api_pb2

logger = logging.getLogger("volt_data.local.services.wires")

WIRE_KIND = "volt:wire"
SUBSCRIBER_QUEUE_SIZE = 1000
#: A subscriber this many chunks behind makes PublishWire callers wait for it ...
PACE_HIGH_WATER = SUBSCRIBER_QUEUE_SIZE // 2
#: ... until it is back under this many ...
PACE_LOW_WATER = SUBSCRIBER_QUEUE_SIZE // 4
#: ... or this many seconds have passed for one chunk (then drop-oldest applies).
PACE_SECONDS = 2.0
_CLOSED_POLL_SECONDS = 0.5


class Subscription:
    """One subscriber's bounded, drop-oldest queue of chunks."""

    def __init__(self, wire_id: str, size: int = SUBSCRIBER_QUEUE_SIZE) -> None:
        self.wire_id = wire_id
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=size)
        self.dropped = 0
        self.caught_up = asyncio.Event()  # clear while the subscriber is PACE_HIGH_WATER behind
        self.caught_up.set()

    def offer(self, chunk: bytes | None) -> None:
        """Queue ``chunk`` (None ends the subscription), dropping the oldest if full."""
        while True:
            try:
                self.queue.put_nowait(chunk)
                if self.queue.qsize() >= PACE_HIGH_WATER:
                    self.caught_up.clear()
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    logger.warning("slow subscriber of wire %s: %d chunks dropped", self.wire_id, self.dropped)


    async def get(self) -> bytes | None:
        """The next queued chunk; wakes paced publishers once the queue is low again."""
        chunk = await self.queue.get()
        if not self.caught_up.is_set() and self.queue.qsize() <= PACE_LOW_WATER:
            self.caught_up.set()
        return chunk


class WireService:
    """The wire API and the fan-out hub behind it."""

    def __init__(self, store: ResourceStore) -> None:
        self.store = store
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        store.on_delete.append(self._end_deleted)

    def handlers(self) -> dict[str, Handler]:
        """Method path -> handler."""
        prefix = "/tdx.volt_api.volt.v1.WireAPI/"
        return {
            prefix + "SaveWire": self.save_wire,
            prefix + "PublishWire": self.publish_wire,
            prefix + "SubscribeWire": self.subscribe_wire,
        }

    def create_wire(self, identity: Identity, name: str, parent_id: str = "", description: str = "") -> Resource:
        """A new wire resource owned by ``identity``."""
        resource = Resource(name=name, description=description, kind=[WIRE_KIND])
        return create_or_update(self.store, identity, resource, create=True, parent_id=parent_id)

    def publish(self, wire_id: str, chunk: bytes) -> int:
        """Deliver one chunk to every subscriber of the wire; returns how many."""
        subscribers = self._subscribers.get(wire_id, ())
        for subscription in subscribers:
            subscription.offer(chunk)
        return len(subscribers)

    async def wait_for_subscribers(self, wire_id: str) -> None:
        """Flow control for publishers: wait while a subscriber of the wire is far behind."""
        behind = [s for s in self._subscribers.get(wire_id, ()) if not s.caught_up.is_set()]
        if behind:
            waits = [asyncio.ensure_future(s.caught_up.wait()) for s in behind]
            try:
                await asyncio.wait(waits, timeout=PACE_SECONDS)
            finally:
                for wait in waits:
                    wait.cancel()

    def subscriber_count(self, wire_id: str) -> int:
        """How many subscribers the wire has now."""
        return len(self._subscribers.get(wire_id, ()))

    def _end_deleted(self, resource: Resource) -> None:
        for subscription in self._subscribers.pop(resource.id, ()):
            subscription.offer(None)

    def _wire(self, identity: Identity, wire_id: str, *, write: bool) -> Resource:
        if write and not identity.can_write:
            raise StatusError(PERMISSION_DENIED, f"{identity.name or identity.id} has read-only access")
        resource = (self.store.check_write if write else self.store.check_read)(identity, wire_id)
        if WIRE_KIND not in resource.kind:
            raise StatusError(INVALID_ARGUMENTS, f"resource {wire_id!r} is not a wire")
        return resource

    async def save_wire(self, call: ServerCall) -> None:
        """SaveWire: create (``create``) or update a wire resource."""
        request = await call.receive()
        if request is None:
            raise StatusError(INVALID_ARGUMENTS, "SaveWire: no request was sent")
        resource = Resource()
        resource.CopyFrom(request.resource)
        if request.create and WIRE_KIND not in resource.kind:
            resource.kind.append(WIRE_KIND)
        saved = create_or_update(
            self.store, call.identity, resource, create=request.create,
            parent_id=request.create_in_parent_id, purge_attributes=request.purge_attributes,
        )
        await call.send(message_to_json(wire_api_pb2.SaveWireResponse(resource=saved)))

    async def publish_wire(self, call: ServerCall) -> None:
        """PublishWire: the first request names the wire (and may carry a chunk); later
        requests carry chunks; on half-close the call answers ``{}``."""
        request = await call.receive()
        if request is None:
            raise StatusError(INVALID_ARGUMENTS, "PublishWire: no request was sent")
        wire_id = request.wire_id
        if not wire_id:
            raise StatusError(INVALID_ARGUMENTS, "the first PublishWire request needs wire_id")
        self._wire(call.identity, wire_id, write=True)
        while request is not None and not call.closed:
            if request.wire_id not in ("", wire_id):
                raise StatusError(INVALID_ARGUMENTS, "a PublishWire call publishes to one wire")
            if request.chunk:
                self.publish(wire_id, request.chunk)
                await self.wait_for_subscribers(wire_id)
            request = await call.receive()
        if not call.closed:
            await call.send({})

    async def subscribe_wire(self, call: ServerCall) -> None:
        """SubscribeWire: ``wire_id`` first, then chunks until ``stop``, half-close or disconnect."""
        request = await call.receive()
        if request is None:
            return
        if request.WhichOneof("payload") != "wire_id" or not request.wire_id:
            raise StatusError(INVALID_ARGUMENTS, "the first SubscribeWire request needs wire_id")
        wire_id = request.wire_id
        self._wire(call.identity, wire_id, write=False)
        subscription = Subscription(wire_id)
        self._subscribers[wire_id].add(subscription)
        receiving = asyncio.ensure_future(call.receive())
        getting = asyncio.ensure_future(subscription.get())
        try:
            while not call.closed:
                # The timeout only re-checks call.closed in case the transport never wakes us.
                done, _ = await asyncio.wait(
                    {receiving, getting}, timeout=_CLOSED_POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                if getting in done:
                    chunk = getting.result()
                    if chunk is None:
                        return
                    await call.send('{"chunk":"' + base64.b64encode(chunk).decode("ascii") + '"}')
                    getting = asyncio.ensure_future(subscription.get())
                if receiving in done:
                    incoming = receiving.result()
                    if incoming is None or incoming.WhichOneof("payload") == "stop":
                        return
                    receiving = asyncio.ensure_future(call.receive())
        finally:
            for task in (receiving, getting):
                task.cancel()
            subscribers = self._subscribers.get(wire_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[wire_id]
