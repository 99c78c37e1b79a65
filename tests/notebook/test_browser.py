"""The live-wire notebook in a real JupyterLab, driven in headless Chromium over the DevTools protocol.

Proves what the unit tests cannot: the widget state changes made from the
kernel reach the browser, the live table's rows and the bqplot line change as
wire data arrives, and the stop cell ends every feed. A screenshot is saved in
the test's ``tmp_path``.
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "02_live_wires.ipynb"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1800",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # the server or page is still starting
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


class DevTools:
    """A minimal blocking DevTools-protocol client for one page target."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.socket = connect(url, max_size=64 * 2**20, open_timeout=10).__enter__()
        self._ids = itertools.count(1)

    def send(self, method: str, **params):
        message_id = next(self._ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.socket.recv(timeout=30))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def click(self, selector: str, text: str | None = None) -> None:
        """A real mouse click on the first element matching ``selector`` (and containing ``text``)."""
        box = self.evaluate(
            f"(() => {{ const e = Array.from(document.querySelectorAll({json.dumps(selector)}))"
            f".find(e => {json.dumps(text)} === null || e.textContent.trim() === {json.dumps(text)});"
            " if (!e) return null; const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + Math.min(r.height / 2, 10)]; })()"
        )
        if box is None:
            raise LookupError(f"nothing matches {selector} {text or ''}")
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=box[0], y=box[1])
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab on loopback with a token, serving a copy of the live-wire notebook."""
    root = tmp_path / "lab"
    root.mkdir()
    notebook = json.loads((REPO / "notebooks" / NOTEBOOK).read_text())
    for cell in notebook["cells"]:  # stored outputs carry no widget state: start clean
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    (root / NOTEBOOK).write_text(json.dumps(notebook))
    # JupyterLab 4 leaves cells outside the viewport out of the page ("windowing");
    # the test reads outputs from the page, so every cell must be rendered.
    settings = tmp_path / "lab-settings"
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"))
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--allow-root", "--LabApp.news_url=", "--LabApp.extension_manager=readonly",
         f"--LabApp.user_settings_dir={settings}"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "wb"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).status == 200,
                   60, "JupyterLab to start")
        yield base, token
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def browser(tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium chromium-driver)")
    port = free_port()
    process = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--remote-debugging-port={port}", f"--user-data-dir={tmp_path / 'chromium'}",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        targets = wait_until(
            lambda: [t for t in json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2))
                     if t["type"] == "page"],
            30, "Chromium's DevTools endpoint",
        )
        devtools = DevTools(targets[0]["webSocketDebuggerUrl"])
        yield devtools
        devtools.close()
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def table_text(page: DevTools) -> str:
    return page.evaluate("(document.querySelector('table.volt-live-table') || {}).textContent || ''")


def plot_paths(page: DevTools) -> str:
    return page.evaluate(
        "Array.from(document.querySelectorAll('.volt-live-plot path.line')).map(p => p.getAttribute('d')).join('|')"
    )


def save_screenshot(page: DevTools, path: Path) -> Path:
    shot = page.send("Page.captureScreenshot", format="png")
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def test_live_wire_notebook_renders_and_updates(jupyterlab, browser, tmp_path):
    page = browser
    try:
        run_live_wire_notebook(page, *jupyterlab, tmp_path)
    except BaseException:
        save_screenshot(page, tmp_path / "failure.png")
        (tmp_path / "failure.txt").write_text(page.evaluate("document.body.innerText") or "")
        raise


def run_live_wire_notebook(page: DevTools, base: str, token: str, tmp_path: Path) -> None:
    page.send("Page.enable")
    page.send("Page.navigate", url=f"{base}/lab/tree/{NOTEBOOK}?token={token}")
    wait_until(lambda: page.evaluate("document.querySelectorAll('.jp-Notebook .jp-Cell').length"),
                       90, "the notebook to render")
    wait_until(
        lambda: any(s["kernel"]["execution_state"] == "idle"
                    for s in json.load(urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=2))),
        60, "the kernel to be idle",
    )
    # The toolbar's "restart the kernel and run all cells" button, then the dialog's accept button
    # (JupyterLab toolbar buttons act on mousedown, so these are real mouse clicks).
    page.click('.jp-NotebookPanel-toolbar [data-command="notebook:restart-run-all"]')
    wait_until(lambda: page.evaluate("!!document.querySelector('.jp-Dialog-button.jp-mod-accept')"), 30,
               "the restart dialog")
    page.click(".jp-Dialog-button.jp-mod-accept")

    first_rows = wait_until(lambda: table_text(page) if "s1" in table_text(page) or "s2" in table_text(page)
                            else None, 90, "the live table to show sensor rows")
    first_paths = wait_until(lambda: plot_paths(page) if "L" in plot_paths(page) else None, 30,
                             "the live plot to draw lines")
    assert "temperature" in first_rows and "humidity" in first_rows
    wait_until(lambda: table_text(page) != first_rows, 10, "the live table to change")
    wait_until(lambda: plot_paths(page) != first_paths, 10, "the live plot to change")

    screenshot = save_screenshot(page, tmp_path / "live_wires.png")
    assert screenshot.stat().st_size > 10_000

    # Run all ends with the stop cell: every feed stops and the table freezes.
    wait_until(lambda: "sample wire and own wire are live: True True" in page.evaluate("document.body.innerText"),
               60, "the check cell's output")
    wait_until(lambda: "live feeds left: 0" in page.evaluate("document.body.innerText"), 30, "the stop cell")
    stopped = table_text(page)
    time.sleep(1.0)
    assert table_text(page) == stopped
