"""Shared fixtures: a real local Volt on a free loopback port, and its identities.

Tests talk to it over real websockets, exactly as users do. One Volt serves the
whole session (starting one costs key generation); tests that need a Volt of
their own (faults, restarts) start one with ``LocalVolt()`` directly.
"""
from __future__ import annotations

import pytest

GENERATIONS = ["v1", "v2"]


@pytest.fixture(scope="session")
def local_volt():
    """A running LocalVolt with the sample data loaded."""
    from volt_data.local import LocalVolt

    with LocalVolt() as volt:
        volt.sample = volt.load_sample()
        yield volt


@pytest.fixture(scope="session")
def sample(local_volt) -> dict:
    """What ``load_sample()`` returned: database_id, table, wire_id, ..."""
    return local_volt.sample


@pytest.fixture(params=GENERATIONS)
def generation(request) -> str:
    """Runs a test once per protocol generation."""
    return request.param


@pytest.fixture
def owner_config(local_volt, generation) -> dict:
    """A fusebox config of the Volt's owner, for the current generation."""
    return local_volt.client_config(name="owner", protocol=generation, access="owner")


@pytest.fixture
def reader_config(local_volt, generation) -> dict:
    return local_volt.client_config(name="reader", protocol=generation, access="read")


@pytest.fixture
def writer_config(local_volt, generation) -> dict:
    return local_volt.client_config(name="writer", protocol=generation, access="write")


@pytest.fixture
async def client(owner_config):
    """An initialised async VoltClient (owner) for the current generation."""
    from volt_data import VoltClient

    async with VoltClient(owner_config) as volt_client:
        yield volt_client
