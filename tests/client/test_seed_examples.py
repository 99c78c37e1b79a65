"""The old client's README examples, run as written against a local Volt.

Each example's code is taken from the seed README text. Only what cannot be the
same on another Volt changes: ``config = ...`` becomes a local Volt config, and
the example's hard-coded database / wire ids become the sample's. The import
``from volt_client_web import VoltClient`` is served by volt_data.
"""
from __future__ import annotations

import contextlib
import io
import re
import sys
import types
from pathlib import Path

import pytest

import volt_data

SEED = Path(__file__).resolve().parents[2].parent / "shared" / "seed" / "volt_client_web-0.1.14-README.txt"
SEED_DATABASE_ID = "fc17c5a1-a858-45c6-804b-7e16af7c968d"
SEED_WIRE_ID = "59dceb36-fafb-4c9e-a4c7-710cd16e9188"


def seed_examples() -> list[str]:
    """The complete programs of the README: each runs ``asyncio.run(main())``."""
    if not SEED.exists():
        pytest.skip("../shared/seed is not beside this checkout")
    text = SEED.read_text()
    starts = [m.start() for m in re.finditer(r"import asyncio # needed", text)]
    chunks = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
    programs = [chunk[: chunk.index("asyncio.run(main())") + len("asyncio.run(main())")]
                for chunk in chunks if "asyncio.run(main())" in chunk]
    return [p for p in programs if "await volt_client." in p]


@pytest.fixture
def as_volt_client_web(monkeypatch):
    """Serve ``import volt_client_web`` from volt_data for the duration of a test."""
    module = types.ModuleType("volt_client_web")
    module.VoltClient = volt_data.VoltClient
    monkeypatch.setitem(sys.modules, "volt_client_web", module)


def run_example(program: str, config: dict, sample: dict) -> str:
    program = program.replace(SEED_DATABASE_ID, sample["database_id"]).replace(SEED_WIRE_ID, sample["wire_id"])
    program = program.replace("NETFLIX", sample["table"])
    namespace = {"__name__": "seed_example"}
    program = program.replace("config = ...", "config = __config__")
    namespace["__config__"] = config
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(program, "seed-readme-example", "exec"), namespace)
    return output.getvalue()


def test_the_readme_has_its_four_programs():
    programs = seed_examples()
    assert len(programs) == 4
    assert any(p.count("await volt_client.") == 1 and "initialise()" in p for p in programs)
    assert any("getResource" in p for p in programs)
    assert any("sqlExecute" in p for p in programs)
    assert any("subscribeWire" in p and 'send({"stop": True})' in p for p in programs)


@pytest.mark.parametrize("generation", ["v1", "v2"])
def test_seed_examples_run_unchanged(local_volt, sample, generation, as_volt_client_web):
    config = local_volt.client_config(name="owner", protocol=generation)
    for program in seed_examples():
        output = run_example(program, config, sample)
        if "getResource" in program:
            # print(result["resource"]) shows Bob's home folder
            assert config["credential"]["client_id"] in output
