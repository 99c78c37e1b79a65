"""Fixtures of the local Volt's service-layer tests."""
from __future__ import annotations

import asyncio

import pytest
from service_harness import IDENTITIES

from volt_data.local.services import VoltServices


@pytest.fixture
def services(tmp_path):
    """The handlers on a fresh data dir, with a home folder for each test identity."""
    services = VoltServices(tmp_path, "volt-root")
    for identity in IDENTITIES:
        services.ensure_home(identity)
    yield services
    asyncio.run(services.close())
