"""The resource handlers of the local Volt on a real metadata database."""
from __future__ import annotations

import asyncio

from service_harness import IDENTITIES, OTHER_WRITER, OWNER, READER, WRITER, call_method, status_code

from volt_data.local.call import NOT_FOUND, PERMISSION_DENIED
from volt_data.local.services import VoltServices

VOLT = "/tdx.volt_api.volt.v1.VoltAPI/"


def run(services, method, identity, *requests):
    return asyncio.run(call_method(services, VOLT + method, identity, *requests))


def test_home_folder_has_identity_id_and_name(services):
    [response] = run(services, "GetResource", WRITER, {"resource_id": WRITER.id})
    resource = response["resource"]
    assert resource["id"] == WRITER.id and resource["name"] == "writer"
    assert resource["kind"] == ["volt:folder"]
    assert isinstance(resource["created"], str) and int(resource["version"]) == 1
    assert "status" not in response


def test_ensure_home_is_idempotent(services):
    services.ensure_home(WRITER)
    children = services.store.children("volt-root")
    assert [c.id for c in children].count(WRITER.id) == 1


def test_unknown_id_is_not_found(services):
    assert status_code(run(services, "GetResource", OWNER, {"resource_id": "nope"})) == NOT_FOUND


def test_save_creates_in_home_then_updates(services):
    [created] = run(services, "SaveResource", WRITER, {"resource": {"name": "notes", "kind": ["volt:folder"]}, "create": True})
    resource = created["resource"]
    assert resource["owner"] == WRITER.id
    [ancestors] = run(services, "GetResourceAncestors", WRITER, {"resource_id": resource["id"]})
    assert [a["id"] for a in ancestors["ancestor"]] == [WRITER.id, "volt-root"]
    [updated] = run(services, "SaveResource", WRITER, {"resource": {"id": resource["id"], "description": "mine"}})
    assert updated["resource"]["description"] == "mine" and updated["resource"]["name"] == "notes"
    assert updated["resource"]["version"] == "2"


def test_access_rules(services):
    [created] = run(services, "SaveResource", WRITER, {"resource": {"name": "private"}, "create": True})
    resource_id = created["resource"]["id"]
    # Another write identity can neither read nor change it; a read identity cannot create anything.
    assert status_code(run(services, "GetResource", OTHER_WRITER, {"resource_id": resource_id})) == PERMISSION_DENIED
    assert status_code(run(services, "DeleteResource", OTHER_WRITER, {"resource_id": resource_id})) == PERMISSION_DENIED
    assert status_code(run(services, "SaveResource", READER, {"resource": {"name": "x"}, "create": True})) == PERMISSION_DENIED
    # Creating in someone else's home is refused; the owner may read and delete anything.
    assert status_code(run(services, "SaveResource", OTHER_WRITER, {
        "resource": {"name": "intruder"}, "create": True, "create_in_parent_id": WRITER.id})) == PERMISSION_DENIED
    assert run(services, "GetResource", OWNER, {"resource_id": resource_id})[0]["resource"]["id"] == resource_id
    assert run(services, "DeleteResource", OWNER, {"resource_id": resource_id}) == [{}]
    assert status_code(run(services, "GetResource", OWNER, {"resource_id": resource_id})) == NOT_FOUND


def test_grants_share_a_subtree(services):
    [folder] = run(services, "SaveResource", WRITER, {"resource": {"name": "shared"}, "create": True})
    folder_id = folder["resource"]["id"]
    [child] = run(services, "SaveResource", WRITER, {
        "resource": {"name": "doc"}, "create": True, "create_in_parent_id": folder_id})
    services.store.grant(folder_id, READER.id, "read")
    [seen] = run(services, "GetResource", READER, {"resource_id": child["resource"]["id"]})
    assert seen["resource"]["name"] == "doc"
    assert status_code(run(services, "SaveResource", READER, {
        "resource": {"id": child["resource"]["id"], "name": "renamed"}})) == PERMISSION_DENIED


def test_descendants_filter_by_access_depth_and_kind(services):
    run(services, "SaveResource", WRITER, {"resource": {"name": "a", "kind": ["volt:wire"]}, "create": True})
    run(services, "SaveResource", OTHER_WRITER, {"resource": {"name": "b"}, "create": True})
    [mine] = run(services, "GetResourceDescendants", WRITER, {"resource_id": "volt-root"})
    names = {r["name"] for r in mine["descendant"]}
    assert "a" in names and "b" not in names and "other" not in names
    [everything] = run(services, "GetResourceDescendants", OWNER, {"resource_id": "volt-root", "depth": 1})
    assert {r["id"] for r in everything["descendant"]} == {i.id for i in IDENTITIES}
    [wires] = run(services, "GetResourceDescendants", OWNER, {"resource_id": "volt-root", "descendant_kind": ["volt:wire"]})
    assert [r["name"] for r in wires["descendant"]] == ["a"]


def test_get_resources_terms_combine_with_and(services):
    run(services, "SaveResource", WRITER, {"resource": {"name": "w1", "kind": ["volt:wire"]}, "create": True})
    run(services, "SaveResource", WRITER, {"resource": {"name": "f1", "kind": ["volt:folder"]}, "create": True})
    [both] = run(services, "GetResources", OWNER, {"kind": ["volt:wire"], "owner": [WRITER.id]})
    assert [r["name"] for r in both["resource"]] == ["w1"]
    [either] = run(services, "GetResources", OWNER, {"name": ["w1"], "kind": ["volt:folder"], "any_of": True})
    assert "w1" in {r["name"] for r in either["resource"]} and "f1" in {r["name"] for r in either["resource"]}


def test_delete_folder_with_children_needs_recursive(services):
    [folder] = run(services, "SaveResource", WRITER, {"resource": {"name": "tree"}, "create": True})
    folder_id = folder["resource"]["id"]
    run(services, "SaveResource", WRITER, {"resource": {"name": "leaf"}, "create": True, "create_in_parent_id": folder_id})
    assert status_code(run(services, "DeleteResource", WRITER, {"resource_id": folder_id})) is not None
    assert run(services, "DeleteResource", WRITER, {"resource_id": folder_id, "recursive": True}) == [{}]
    assert services.store.get(folder_id) is None


def test_tree_persists_across_restarts(tmp_path):
    first = VoltServices(tmp_path, "volt-root")
    first.ensure_home(WRITER)
    [created] = asyncio.run(call_method(first, VOLT + "SaveResource", WRITER, {"resource": {"name": "kept"}, "create": True}))
    asyncio.run(first.close())
    second = VoltServices(tmp_path, "volt-root")
    [again] = asyncio.run(call_method(second, VOLT + "GetResource", WRITER, {"resource_id": created["resource"]["id"]}))
    assert again["resource"]["name"] == "kept"
    asyncio.run(second.close())


def test_unimplemented_methods_have_no_handler(services):
    assert services.handler_for(VOLT + "Shutdown") is None
    assert services.handler_for(VOLT + "GetResource") is not None
