"""The data layer: Execute results as Arrow/pandas, and DataFrames written back to the Volt.

``read_sql`` / ``read_sql_arrow`` / ``iter_batches`` (and async twins) read,
``to_volt`` writes; all take ``client=`` or use the default connection
(:func:`set_default_client`, else ``$VOLT_CONFIG``).
"""
from __future__ import annotations

from volt_data.data.default import default_client, set_default_client
from volt_data.data.readers import (
    ExecuteStream,
    VoltBatchReader,
    aiter_batches,
    iter_batches,
    read_sql,
    read_sql_arrow,
    read_sql_arrow_async,
    read_sql_async,
)
from volt_data.data.resolve import UnknownDatabaseError, resolve_database
from volt_data.data.writer import TableExistsError, to_volt, to_volt_async

__all__ = [
    "ExecuteStream",
    "TableExistsError",
    "UnknownDatabaseError",
    "VoltBatchReader",
    "aiter_batches",
    "default_client",
    "iter_batches",
    "read_sql",
    "read_sql_arrow",
    "read_sql_arrow_async",
    "read_sql_async",
    "resolve_database",
    "set_default_client",
    "to_volt",
    "to_volt_async",
]
