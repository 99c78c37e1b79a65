"""The Volt client: connection, calls, the generated API and the sync facade."""
from __future__ import annotations

from volt_data.client.api import VoltClient
from volt_data.client.calls import Call

__all__ = ["Call", "VoltClient"]
