"""`badia viz` start-up: loopback unless told otherwise, a busy port in one line, no blank page
for want of the offline assets (issue: the browser app, safe to share)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from sim.app import serve
from sim.errors import UserError


def test_loopback_hosts_pass_and_others_need_allow_remote(capsys):
    assert serve.check_host("127.0.0.1", False) == "127.0.0.1"
    assert serve.check_host("::1", False) == "::1"
    with pytest.raises(UserError, match="--allow-remote"):
        serve.check_host("0.0.0.0", False)
    assert serve.check_host("0.0.0.0", True) == "0.0.0.0"
    assert "WARNING" in capsys.readouterr().err


def test_a_busy_port_is_one_clear_line():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        with pytest.raises(UserError, match=f"--port {port}: cannot serve"):
            serve.check_port_free("127.0.0.1", port)


def test_missing_assets_and_no_npm_say_what_to_run(monkeypatch, tmp_path):
    from sim.app import assets

    monkeypatch.setattr(assets, "cache_dir", lambda: tmp_path)  # an empty cache
    monkeypatch.setattr("shutil.which", lambda name: None)      # and no npm
    with pytest.raises(UserError, match=r"python -m sim\.app\.assets"):
        serve.check_assets()


def test_the_cli_refuses_a_remote_host_without_a_traceback():
    out = subprocess.run([sys.executable, "-m", "sim.cli", "viz", "--host", "0.0.0.0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "--allow-remote" in out.stderr + out.stdout


def test_the_path_field_opens_only_allowed_scenario_files_and_never_echoes_them(
        monkeypatch, tmp_path):
    from sim.app import scenarios
    from sim.app.model import VizModel

    root = tmp_path / "work"
    root.mkdir()
    secret = tmp_path / "secret.yaml"  # outside every allowed folder
    secret.write_text("map: db_password=hunter2\n")
    mine = root / "mine.yaml"        # inside the folder badia viz was started in
    mine.write_text("map: db_password=hunter2\n")
    monkeypatch.setenv(scenarios.ENV_ROOT, str(root))
    monkeypatch.delenv(scenarios.ENV_SCENARIOS, raising=False)
    assert scenarios.checked_scenario_path("/etc/passwd")[0] is None
    assert scenarios.checked_scenario_path(str(secret))[0] is None
    assert scenarios.checked_scenario_path("../secret.yaml")[0] is None
    assert scenarios.checked_scenario_path("mine.yaml")[0] == mine.resolve()
    bundled = next(iter(scenarios.bundled_scenarios().values()))
    assert scenarios.checked_scenario_path(str(bundled))[0] == bundled.resolve()
    for typed in ("/etc/passwd", str(secret), "../secret.yaml", "/dev/zero",
                  "/proc/self/environ"):
        m = VizModel(scenario_path=typed)
        text = " ".join(m.viz.notices)
        assert "hunter2" not in text and "root:" not in text, (typed, text)
        assert "not a scenario file the app may open" in text, typed
    # a file of the author's own folder: its problems, by file and field
    m = VizModel(scenario_path="mine.yaml")
    assert any(n.startswith(str(mine.resolve())) or "mine.yaml" in n for n in m.viz.notices)
