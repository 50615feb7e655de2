"""A run's joules in the Ray dashboard, as a user sees them: headless Chromium, token auth on.

A private Ray head with token authentication runs one ``rayjoule.run``; the dashboard's
own HTTP API (``/api/v0/logs``) names the meter actor's log file on the head node; and
Chromium (Debian's ``chromium``) opens the dashboard's Logs page for that file, the
page docs/metrics.md points at. The DOM Chromium rendered must hold the run's window
line with its joules, and the screenshot is what docs/img/ray-dashboard-energy.png shows.

The dashboard accepts the token as an ``Authorization: Bearer`` header, an
``X-Ray-Authorization`` header or the ``ray-authentication-token`` cookie its login
dialog sets; Chromium's command line can send none of them, so a loopback proxy in the
test adds the header to every request, as a reverse proxy in front of a dashboard would.
"""

from __future__ import annotations

import html
import http.server
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests_support.private_ray import private_head

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no `chromium` on PATH (Debian: apt-get install chromium)")

#: set to a path to keep the screenshot (the docs' image is made this way)
SCREENSHOT_ENV = "RAYJOULE_DASHBOARD_SCREENSHOT"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--window-size=1400,900",
                  "--virtual-time-budget=30000")


@contextmanager
def token_proxy(upstream: str, token: str) -> Iterator[str]:
    """A loopback HTTP proxy to ``upstream`` that adds ``Authorization: Bearer <token>``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            req = urllib.request.Request(upstream + self.path,
                                         headers={"Authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    status, headers, body = resp.status, resp.headers, resp.read()
            except urllib.error.HTTPError as exc:
                status, headers, body = exc.code, exc.headers, exc.read()
            self.send_response(status)
            for key in ("Content-Type", "Cache-Control"):
                if headers.get(key):
                    self.send_header(key, headers[key])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _api(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.load(resp)


def _chromium(url: str, *extra: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, *extra, url], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_the_dashboard_logs_page_shows_a_runs_joules(tmp_path):
    token = secrets.token_hex(32)
    with private_head(num_cpus=2, auth_token=token) as head:
        out = tmp_path / "run.json"
        proc = subprocess.run(
            [sys.executable, "-m", "rayjoule.run", "--workload", "pi", "--size", "200000",
             "--framework", "ray", "--tasks", "2", "--meter", "tdp", "--idle-seconds", "0",
             "--address", head.address, "--db", str(tmp_path / "r.sqlite"), "--json",
             str(out)], env=head.env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        run = json.loads(out.read_text())
        with token_proxy(head.dashboard_url, token) as proxy:
            # the dashboard's API: the head node, and the meter log among its files
            nodes = _api(f"{proxy}/api/v0/nodes")["data"]["result"]["result"]
            [node_id] = [n["node_id"] for n in nodes if n.get("is_head_node")]
            files = _api(f"{proxy}/api/v0/logs?node_id={node_id}")["data"]["result"]
            names = [Path(f).name for group in files.values() for f in group]
            [log_name] = [f for f in names if f.startswith("rayjoule-meter-")]
            page = (f"{proxy}/#/logs/viewer?nodeId={node_id}&fileName="
                    + urllib.parse.quote(log_name))
            line = f"window run={run['run_id']} workload=pi framework=ray"
            for _ in range(3):  # the page fetches the file after it loads: give it time
                dom = _chromium(page, "--dump-dom", cwd=tmp_path)
                text = html.unescape(re.sub(r"<[^>]+>", "", dom.stdout))
                if line in text:
                    break
            shot = tmp_path / "dashboard.png"
            _chromium(page, f"--screenshot={shot}", cwd=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert line in text, text[-3000:]
    joules = float(text.split(line)[1].split("joules=")[1].split()[0])
    assert joules == pytest.approx(run["energy"]["total_j"], abs=0.01)
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(shot, os.environ[SCREENSHOT_ENV])
