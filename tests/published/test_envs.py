"""The environment builder: failures become a clear reason, ready environments are reused."""
from __future__ import annotations

import sys
import time

import pytest

import envs


def test_missing_tool_is_reported_not_raised_raw():
    with pytest.raises(envs.ClientEnvUnavailable, match="no-such-installer-tool is not installed"):
        envs._run(["no-such-installer-tool", "install", "x"])


def test_failed_install_keeps_the_tools_last_words():
    command = [sys.executable, "-c", "import sys; print('registry said no', file=sys.stderr); sys.exit(3)"]
    with pytest.raises(envs.ClientEnvUnavailable, match="registry said no"):
        envs._run(command)


def test_a_hanging_install_is_abandoned(monkeypatch):
    monkeypatch.setattr(envs, "INSTALL_TIMEOUT", 0.5)
    with pytest.raises(envs.ClientEnvUnavailable, match="took more than"):
        envs._run([sys.executable, "-c", "import time; time.sleep(30)"])


def test_cache_dir_follows_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("VOLT_PUBLISHED_CACHE", str(tmp_path / "cache"))
    assert envs.cache_dir() == tmp_path / "cache" and (tmp_path / "cache").is_dir()


@pytest.mark.published_clients
@pytest.mark.timeout(900)  # may build the environment first
@pytest.mark.parametrize("build", [envs.python_client_env, envs.js_client_env], ids=["python", "js"])
def test_a_built_environment_is_reused_quickly(build):
    try:
        first = build()
    except envs.ClientEnvUnavailable as exc:
        pytest.skip(str(exc))
    began = time.monotonic()
    assert build() == first
    assert time.monotonic() - began < 2.0
    root = first if first.is_dir() else first.parents[1]  # the venv root, above bin/python
    assert envs.build_seconds(root) > 0
