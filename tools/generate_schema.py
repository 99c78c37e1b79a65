"""Generate the Python protobuf modules in ``volt_data/schema/tdx`` from ``protos/``.

    python tools/generate_schema.py            # needs grpcio-tools (the [dev] extra)

protoc writes absolute imports (``from tdx.volt_api...``); they are rewritten to
live under ``volt_data.schema`` so the generated code never claims a top-level
``tdx`` package in the user's environment.
"""
from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
TARGET = ROOT / "volt_data" / "schema" / "tdx"


def generate(target: Path = TARGET) -> list[Path]:
    from grpc_tools import protoc

    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as out:
        code = protoc.main(["protoc", f"-I{PROTOS}", f"--python_out={out}", *sources])
        if code != 0:
            raise SystemExit(f"protoc failed with exit code {code}")
        if target.exists():
            shutil.rmtree(target)
        written = []
        for path in sorted(Path(out, "tdx").rglob("*_pb2.py")):
            text = re.sub(r"^from tdx\.", "from volt_data.schema.tdx.", path.read_text(), flags=re.M)
            dest = target / path.relative_to(Path(out, "tdx"))
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text)
            written.append(dest)
        for folder in [target, *(p for p in target.rglob("*") if p.is_dir())]:
            (folder / "__init__.py").write_text("")
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else TARGET
    for path in generate(target):
        print(path.relative_to(target.parent))
