"""The sample data every local Volt can offer: a SQLite database and a live wire.

The database ``sample`` holds ``sensors``, ``readings`` (thousands of rows),
``people`` (names in many scripts) and ``value_types`` (one row per edge case:
every SQLite storage class, NULL in every column, int64 extremes, 2**53 + 1,
infinities, empty text and blob, emoji, CJK, right-to-left text). SQLite stores
NaN as NULL, so NaN cannot be sample data. Everything is generated from a fixed
seed, so two Volts hold identical data.
"""
from __future__ import annotations

import asyncio
import math
import random
import sqlite3
import time

import orjson

SEED = 20241125
READINGS = 5000

SENSORS = [
    (1, "s1", "Greenhouse", 1.5, 21.0),
    (2, "s2", "Cellar", 0.5, 12.5),
    (3, "s3", "Attic", 3.0, 27.0),
    (4, "s4", "Kühlraum", 2.0, 4.0),
    (5, "s5", "東京オフィス", 1.0, 23.5),
    (6, "s6", "غرفة الخادم", 2.5, 19.0),
]

PEOPLE = [
    "Ada Lovelace", "Zoë Ångström", "José Núñez", "Ευκλείδης", "Иван Петров", "李小龙", "山田太郎",
    "김민준", "محمد عبد الله", "דוד כהן", "Nguyễn Văn An", "Þórunn Jónsdóttir", "Łukasz Żółć",
    "Saanvi शर्मा", "Chidi 🚀 Okafor", "",
]

VALUE_TYPES = [
    ("all null", None, None, None, None),
    ("int64 min", -9223372036854775808, -1.7976931348623157e308, "min", b""),
    ("int64 max", 9223372036854775807, 1.7976931348623157e308, "max", b"\xff" * 8),
    ("2**53 + 1", 9007199254740993, 9007199254740993.0, "beyond double precision", b"\x00\xff"),
    ("zero", 0, 0.0, "", b"\x00"),
    ("negative zero", -1, -0.0, "-0", b"\x80"),
    ("infinity", 1, math.inf, "Infinity", None),
    ("minus infinity", -1, -math.inf, "-Infinity", None),
    ("tiny real", 2, 5e-324, "denormal", None),
    ("emoji", 3, 3.14159, "🎉👩‍👩‍👧 ok", "😀".encode()),
    ("cjk", 4, 2.5, "漢字かなカナ한글", "字".encode()),
    ("rtl", 5, -2.5, "שלום עולם مرحبا", None),
    ("json-ish", 6, 1e-7, 'quote " backslash \\ newline \n tab \t', b'{"a":1}'),
    ("text in integer column", None, None, None, None),
]


_SCHEMA = """
CREATE TABLE sensors (id INTEGER PRIMARY KEY, name TEXT NOT NULL, location TEXT,
                      height_m REAL, target_temperature REAL, calibration BLOB);
CREATE TABLE readings (id INTEGER PRIMARY KEY, sensor_id INTEGER REFERENCES sensors(id),
                       ts REAL, temperature REAL, humidity REAL, battery INTEGER, note TEXT);
CREATE INDEX readings_sensor_ts ON readings(sensor_id, ts);
CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, city TEXT, born INTEGER, score REAL, avatar BLOB);
CREATE TABLE value_types (label TEXT, int_value INTEGER, real_value REAL, text_value TEXT, blob_value BLOB);
"""


def _build(connection: sqlite3.Connection) -> None:
    generator = random.Random(SEED)
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            connection.execute(statement)
    connection.executemany(
        "INSERT INTO sensors VALUES (?, ?, ?, ?, ?, ?)",
        [(*row, bytes(generator.randrange(256) for _ in range(8))) for row in SENSORS],
    )
    start = 1732540000.0
    readings = []
    for index in range(READINGS):
        sensor = SENSORS[index % len(SENSORS)]
        temperature = round(sensor[4] + generator.gauss(0, 1.5), 2)
        readings.append((
            index + 1,
            sensor[0],
            start + index * 0.25,
            None if index % 97 == 13 else temperature,
            None if index % 89 == 7 else round(generator.uniform(30, 70), 1),
            None if index % 71 == 3 else 100 - index * 100 // READINGS,
            None if index % 50 else generator.choice(["ok", "recalibrated", "door open 🚪", "再起動"]),
        ))
    connection.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?, ?)", readings)
    people = []
    for index, name in enumerate(PEOPLE, start=1):
        people.append((
            index,
            None if index == 7 else name,
            generator.choice(["London", "São Paulo", "القاهرة", "北京", "Zürich", None]),
            None if index % 5 == 0 else generator.randrange(1940, 2010),
            None if index % 6 == 0 else round(generator.random() * 100, 3),
            None if index % 3 else bytes(generator.randrange(256) for _ in range(4)),
        ))
    connection.executemany("INSERT INTO people VALUES (?, ?, ?, ?, ?, ?)", people)
    connection.executemany("INSERT INTO value_types VALUES (?, ?, ?, ?, ?)", VALUE_TYPES)
    # SQLite is dynamically typed: one row holds a value of another class in each column.
    connection.execute(
        "UPDATE value_types SET int_value = 'not a number', real_value = x'0102', text_value = 42, "
        "blob_value = 1.5 WHERE label = 'text in integer column'"
    )


def build_sample_database(path: str) -> None:
    """Fill an empty database file with the sample tables, in one transaction."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN")
        _build(connection)
        connection.execute("COMMIT")
    finally:
        connection.close()


def sensor_chunk(generator: random.Random, sequence: int) -> bytes:
    """One JSON reading as published on the sample wire."""
    sensor = SENSORS[sequence % len(SENSORS)]
    return orjson.dumps({
        "sensor": sensor[1],
        "ts": round(time.time(), 3),
        "temperature": round(sensor[4] + generator.gauss(0, 1.0), 1),
        "humidity": round(generator.uniform(30, 70), 1),
        "sequence": sequence,
    })


async def publish_sensor_stream(publish, wire_id: str, interval: float = 0.25) -> None:
    """Publish a sensor reading on ``wire_id`` every ``interval`` seconds until cancelled.

    ``publish(wire_id, chunk)`` is the wire hub's fan-out function.
    """
    generator = random.Random(SEED)
    sequence = 0
    while True:
        publish(wire_id, sensor_chunk(generator, sequence))
        sequence += 1
        await asyncio.sleep(interval)
