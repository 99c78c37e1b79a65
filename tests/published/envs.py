"""Build, once, the environments in which the published Volt clients run.

The published clients cannot share our interpreter: ``volt_client_web`` 0.1.14
pins ``cryptography<41`` and ``websockets<12`` (protocol reference §7, §11), and
the JS client needs Node with ``ws``. Each environment is built into a cache
directory (``$VOLT_PUBLISHED_CACHE``, else ``<repo>/.cache/published-clients``,
which git ignores) and marked ready only after a complete install, so a re-run
reuses it in well under a second and a broken half-install is rebuilt.

Every subprocess has a timeout; a failed install (no network, registry refusal,
no ``node``) raises :class:`ClientEnvUnavailable` with the tool's own words, which
the tests turn into ``pytest.skip``. A file lock serialises concurrent builders.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_JSON = Path(__file__).with_name("package.json")
PACKAGE_LOCK = Path(__file__).with_name("package-lock.json")

PYTHON_CLIENT_SPEC = ("volt_client_web==0.1.14", "setuptools")
"""What the v1 environment installs: the client plus the ``pkg_resources`` it imports."""

INSTALL_TIMEOUT = 300.0
"""Seconds one pip or npm run may take before the build is abandoned."""

_READY = ".ready.json"


class ClientEnvUnavailable(Exception):
    """A published-client environment could not be built on this machine."""


def cache_dir() -> Path:
    """The directory holding the built environments (created on demand)."""
    path = Path(os.environ.get("VOLT_PUBLISHED_CACHE") or REPO_ROOT / ".cache" / "published-clients")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _locked(name: str) -> Iterator[None]:
    """Hold an exclusive lock so two test processes never build the same env at once."""
    with open(cache_dir() / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: list[str], cwd: Path | None = None) -> None:
    """Run one install step; any failure or timeout becomes ClientEnvUnavailable."""
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise ClientEnvUnavailable(f"{command[0]} is not installed: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ClientEnvUnavailable(f"{' '.join(command)} took more than {INSTALL_TIMEOUT:.0f} s") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-8:]
        raise ClientEnvUnavailable(f"{' '.join(command[:3])} ... failed: " + " | ".join(tail))


def _is_ready(root: Path, spec: object) -> bool:
    marker = root / _READY
    try:
        return json.loads(marker.read_text())["spec"] == spec
    except (OSError, ValueError, KeyError):
        return False


def _mark_ready(root: Path, spec: object, started: float) -> None:
    seconds = round(time.monotonic() - started, 1)
    (root / _READY).write_text(json.dumps({"spec": spec, "build_seconds": seconds}))


def build_seconds(root: Path) -> float | None:
    """How long the last build of the environment at ``root`` took (None if unknown)."""
    try:
        return float(json.loads((root / _READY).read_text())["build_seconds"])
    except (OSError, ValueError, KeyError):
        return None


def python_client_env() -> Path:
    """Return the interpreter of a virtual environment holding ``volt_client_web`` 0.1.14."""
    root = cache_dir() / "py-volt_client_web-0.1.14"
    python = root / "bin" / "python"
    spec = list(PYTHON_CLIENT_SPEC)
    with _locked("python"):
        if _is_ready(root, spec) and python.exists():
            return python
        shutil.rmtree(root, ignore_errors=True)
        started = time.monotonic()
        try:
            _run([sys.executable, "-m", "venv", str(root)])
            _run([str(python), "-m", "pip", "install", "--quiet", "--timeout", "30", "--retries", "1",
                  *spec])
            _run([str(python), "-c", "import volt_client_web"])
        except ClientEnvUnavailable:
            shutil.rmtree(root, ignore_errors=True)
            raise
        _mark_ready(root, spec, started)
    return python


def js_client_env() -> Path:
    """Return a folder whose ``node_modules`` holds ``@tdxvolt/volt-client-web`` 0.20.34 and ``ws``.

    Installed from ``package.json`` and, when present, the committed ``package-lock.json``.

    Scripts that import the client must run with this folder as the working
    directory or be placed in it (Node resolves packages from the script's folder).
    """
    root = cache_dir() / "js-volt-client-web-0.20.34"
    manifest = json.loads(PACKAGE_JSON.read_text())
    lock = hashlib.sha256(PACKAGE_LOCK.read_bytes()).hexdigest() if PACKAGE_LOCK.exists() else None
    spec = {"dependencies": manifest["dependencies"], "lock_sha256": lock}
    with _locked("js"):
        if _is_ready(root, spec) and (root / "node_modules" / "@tdxvolt" / "volt-client-web").is_dir():
            return root
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        started = time.monotonic()
        try:
            _run(["node", "--version"])
            shutil.copyfile(PACKAGE_JSON, root / "package.json")
            if lock:  # the lock pins every transitive package; `npm ci` installs exactly that
                shutil.copyfile(PACKAGE_LOCK, root / "package-lock.json")
            _run(["npm", "ci" if lock else "install", "--no-audit", "--no-fund", "--loglevel=error",
                  "--fetch-timeout=30000", "--fetch-retries=1"], cwd=root)
        except ClientEnvUnavailable:
            shutil.rmtree(root, ignore_errors=True)
            raise
        _mark_ready(root, spec, started)
    return root


if __name__ == "__main__":  # `python tests/published/envs.py` builds both and prints the timings
    for build in (python_client_env, js_client_env):
        began = time.monotonic()
        where = build()
        print(f"{build.__name__}: {where} ({time.monotonic() - began:.1f} s)")
