"""Handlers of ``tdx.volt_api.volt.v1.VoltAPI`` that read and change the resource tree."""
from __future__ import annotations

from volt_data.local.call import (
    ALREADY_EXISTS,
    FAILED_PRECONDITION,
    INVALID_ARGUMENTS,
    PERMISSION_DENIED,
    Handler,
    Identity,
    ServerCall,
    StatusError,
)
from volt_data.local.services.tree import Resource, ResourceStore
from volt_data.schema import message_to_json
from volt_data.schema.tdx.volt_api.volt.v1 import volt_api_pb2 as api


def _shown(resource: Resource, include_attributes: bool) -> Resource:
    if include_attributes or not resource.attribute:
        return resource
    copy = Resource()
    copy.CopyFrom(resource)
    del copy.attribute[:]
    return copy


async def _request(call: ServerCall):
    request = await call.receive()
    if request is None:
        raise StatusError(INVALID_ARGUMENTS, f"{call.method.name}: no request was sent")
    return request


class ResourceHandlers:
    """GetResource, GetResources, GetResourceDescendants, GetResourceAncestors,
    SaveResource and DeleteResource over a :class:`ResourceStore`."""

    def __init__(self, store: ResourceStore) -> None:
        self.store = store

    def handlers(self) -> dict[str, Handler]:
        """Method path -> handler."""
        prefix = "/tdx.volt_api.volt.v1.VoltAPI/"
        return {
            prefix + "GetResource": self.get_resource,
            prefix + "GetResources": self.get_resources,
            prefix + "GetResourceDescendants": self.get_descendants,
            prefix + "GetResourceAncestors": self.get_ancestors,
            prefix + "SaveResource": self.save_resource,
            prefix + "DeleteResource": self.delete_resource,
        }

    async def get_resource(self, call: ServerCall) -> None:
        """One resource by id."""
        request = await _request(call)
        resource = self.store.check_read(call.identity, request.resource_id)
        response = api.GetResourceResponse(resource=_shown(resource, request.include_attributes))
        await call.send(message_to_json(response))

    async def get_resources(self, call: ServerCall) -> None:
        """Resources matching the request's terms, among those the caller may read.

        Within one term (e.g. ``kind``) any listed value matches; terms combine
        with AND, or with OR when ``any_of`` is set. No term at all lists everything
        readable. ``limit`` caps the answer; ``modified_since`` filters by time.
        """
        request = await _request(call)
        terms = []
        for field in ("id", "name", "description", "owner", "store"):
            wanted = set(getattr(request, field))
            if wanted:
                terms.append(lambda r, f=field, w=wanted: getattr(r, f) in w)
        for field in ("kind", "alias"):
            wanted = set(getattr(request, field))
            if wanted:
                terms.append(lambda r, f=field, w=wanted: bool(w.intersection(getattr(r, f))))
        if request.parent_id:
            parents = set(request.parent_id)
            terms.append(lambda r: self.store.parent_id(r.id) in parents)
        combine = any if request.any_of else all
        found = []
        for resource in self.store.all():
            if request.modified_since and resource.modified < request.modified_since:
                continue
            if terms and not combine(term(resource) for term in terms):
                continue
            if not self.store.can_read(call.identity, resource):
                continue
            found.append(_shown(resource, request.include_attributes))
            if request.limit and len(found) >= request.limit:
                break
        await call.send(message_to_json(api.GetResourcesResponse(resource=found)))

    async def get_descendants(self, call: ServerCall) -> None:
        """Descendants of a resource (``depth`` <= 0: all levels), readable ones only."""
        request = await _request(call)
        top = self.store.check_read(call.identity, request.resource_id)
        found = [top] if request.include_resource_id else []
        kinds = set(request.descendant_kind)
        for resource, _level in self.store.descendants(top.id, request.depth):
            if kinds and not kinds.intersection(resource.kind):
                continue
            if request.descendant_id and resource.id != request.descendant_id:
                continue
            if request.name and resource.name != request.name:
                continue
            if request.parent_id and self.store.parent_id(resource.id) != request.parent_id:
                continue
            if request.modified_since and resource.modified < request.modified_since:
                continue
            if self.store.can_read(call.identity, resource):
                found.append(resource)
        shown = [_shown(r, request.include_attributes) for r in found]
        await call.send(message_to_json(api.GetResourceDescendantsResponse(descendant=shown)))

    async def get_ancestors(self, call: ServerCall) -> None:
        """Ancestors of a resource, nearest first, up to the root (or ``depth`` levels)."""
        request = await _request(call)
        start = self.store.check_read(call.identity, request.resource_id)
        chain = [start] if request.include_resource_id else []
        for level, ancestor_id in enumerate(self.store.ancestor_ids(start.id), start=1):
            if request.depth > 0 and level > request.depth:
                break
            ancestor = self.store.get(ancestor_id)
            if ancestor is None:
                break
            if request.ancestor_kind and request.ancestor_kind not in ancestor.kind:
                continue
            if request.ancestor_id and ancestor.id != request.ancestor_id:
                continue
            chain.append(ancestor)
        shown = [_shown(r, request.include_attributes) for r in chain]
        await call.send(message_to_json(api.GetResourceAncestorsResponse(ancestor=shown)))

    async def save_resource(self, call: ServerCall) -> None:
        """Create (``create`` true) or update a resource."""
        request = await _request(call)
        resource = create_or_update(
            self.store, call.identity, request.resource, create=request.create,
            parent_id=request.create_in_parent_id, purge_attributes=request.purge_attributes,
        )
        await call.send(message_to_json(api.SaveResourceResponse(resource=resource)))

    async def delete_resource(self, call: ServerCall) -> None:
        """Delete a resource; a folder with children needs ``recursive``."""
        request = await _request(call)
        resource = self.store.check_write(call.identity, request.resource_id)
        if resource.id == self.store.root_id:
            raise StatusError(PERMISSION_DENIED, "the root folder cannot be deleted")
        if self.store.children(resource.id) and not request.recursive:
            raise StatusError(FAILED_PRECONDITION, f"resource {resource.id!r} has children; set recursive")
        for child, _ in self.store.descendants(resource.id):
            if not self.store.can_write(call.identity, child):
                raise StatusError(PERMISSION_DENIED, f"may not delete descendant {child.id!r}")
        self.store.delete(resource.id)
        await call.send({})


def create_or_update(
    store: ResourceStore,
    identity: Identity,
    resource: Resource,
    *,
    create: bool,
    parent_id: str = "",
    purge_attributes: bool = False,
) -> Resource:
    """The shared create/update rule of SaveResource, SaveWire and CreateDatabase.

    New resources go under ``parent_id`` (default: the caller's home folder),
    which the caller must be able to change; they belong to the caller.
    """
    if not identity.can_write:
        raise StatusError(PERMISSION_DENIED, f"{identity.name or identity.id} has read-only access")
    if create:
        if resource.id and store.get(resource.id) is not None:
            raise StatusError(ALREADY_EXISTS, f"resource {resource.id!r} already exists")
        if not resource.name:
            raise StatusError(INVALID_ARGUMENTS, "a new resource needs a name")
        if not parent_id:
            store.ensure_folder(identity.id, identity.name or identity.id, store.root_id, identity.id)
        parent = store.check_write(identity, parent_id or identity.id)
        return store.create(resource, parent.id, identity.id)
    if not resource.id:
        raise StatusError(INVALID_ARGUMENTS, "resource.id is required to update a resource (or set create)")
    store.check_write(identity, resource.id)
    return store.update(resource, purge_attributes=purge_attributes)
