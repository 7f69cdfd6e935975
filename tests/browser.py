"""Shared helpers for browser tests: serve a web app on a free local port, drive Debian's chromium.

Usage in a test module::

    from browser import serve, solara_command

    def test_app(offline_page):           # fixtures come from conftest.py
        with serve(solara_command("app.py")) as url:
            offline_page.goto(url)
            ...

Playwright never downloads a browser here: it drives ``/usr/bin/chromium`` (``make test`` installs
it). A missing chromium fails the test with a clear message instead of skipping it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOST = "127.0.0.1"

# Environment for served apps: no telemetry calls to the internet, no browser download.
SERVER_ENV = {
    "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
    "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
    "MPLBACKEND": "Agg",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def solara_command(app: str | os.PathLike[str], *extra: str) -> list[str]:
    """``solara run`` for ``app`` in production mode on ``{host}:{port}`` (filled in by serve)."""
    return [
        sys.executable, "-m", "solara", "run", str(app),
        "--host", "{host}", "--port", "{port}", "--production", "--no-open", *extra,
    ]  # fmt: skip


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


@contextmanager
def serve(
    cmd: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/",
    startup_timeout_s: float = 90.0,
) -> Iterator[str]:
    """Run a server command on a free local port and yield its base URL once it answers.

    ``{host}`` and ``{port}`` in ``cmd`` are replaced. The server runs in its own process group,
    which is killed on exit. Fails the test (with the server's last output lines) if the process
    dies or ``ready_path`` does not answer HTTP 200 within ``startup_timeout_s``.
    """
    port = free_port()
    argv = [a.replace("{host}", HOST).replace("{port}", str(port)) for a in cmd]
    full_env = {**os.environ, **SERVER_ENV, **(env or {})}
    log = Path(tempfile.mkstemp(prefix="served-", suffix=".log")[1])
    url = f"http://{HOST}:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"server exited with code {proc.returncode} before answering: "
                    f"{' '.join(argv)}\n{_tail(log)}"
                )
            try:
                with urllib.request.urlopen(url + ready_path, timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"server did not answer {url}{ready_path} within {startup_timeout_s:.0f} s: "
                    f"{' '.join(argv)}\n{_tail(log)}"
                )
            time.sleep(0.25)
        yield url
    finally:
        _stop(proc)
        log.unlink(missing_ok=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the process group, then kill it if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue


def require_chromium() -> Path:
    """Path of Debian's chromium; fails (never skips) the test when it is not installed."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM} not found: browser tests need Debian's chromium. Run `make test` "
            "(installs it as root) or `apt-get install -y chromium`."
        )
    return CHROMIUM


@contextmanager
def launch_chromium() -> Iterator[object]:
    """A headless Playwright ``Browser`` running /usr/bin/chromium."""
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


class OfflinePage:
    """A Playwright page whose requests may reach only 127.0.0.1; records what went wrong.

    ``blocked``: URLs that tried to leave the machine (aborted). ``failed``: local requests that
    failed or returned HTTP >= 400. ``errors``: uncaught page errors (JavaScript exceptions).
    """

    def __init__(self, page: object) -> None:
        self.page = page
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.page, name)


@contextmanager
def offline_page_in(
    browser: object, viewport: tuple[int, int] = (1400, 1000)
) -> Iterator[OfflinePage]:
    """A new browser context and page that cannot reach the internet (see ``OfflinePage``)."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    wrapped = OfflinePage(page)

    def route(route: object) -> None:
        url = route.request.url
        host = urlsplit(url).hostname
        if url.startswith(("data:", "blob:")) or host in (HOST, "localhost"):
            route.continue_()
        else:
            wrapped.blocked.append(url)
            route.abort()

    def on_response(response: object) -> None:
        if response.status >= 400:
            wrapped.failed.append(f"{response.status} {response.url}")

    def on_failed(request: object) -> None:
        if urlsplit(request.url).hostname in (HOST, "localhost"):
            wrapped.failed.append(f"{request.failure} {request.url}")

    context.route("**/*", route)
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    page.on("pageerror", lambda exc: wrapped.errors.append(str(exc)))
    try:
        yield wrapped
    finally:
        context.close()
