"""`make install` installs with the uv that pyproject.toml pins (a tested version too), and with pip where uv fails."""

from __future__ import annotations

import subprocess
import tomllib

from grading_harness import ROOT


def test_make_install_uses_the_uv_pinned_in_pyproject():
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    pinned = [r.split("#")[0].strip() for r in dev if r.startswith("uv")]
    assert len(pinned) == 1 and "<" in pinned[0], f"pyproject.toml's dev extra must pin a range of uv: {pinned}"
    commands = subprocess.run(
        ["make", "-n", "-B", "install", "VENV=/nonexistent/venv"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert f"pip install --quiet '{pinned[0]}'" in commands, commands
    assert "/nonexistent/venv/bin/uv pip install --quiet --system-certs" in commands, commands
    assert "|| {" in commands and "/nonexistent/venv/bin/python -m pip install --quiet -e" in commands, "no pip fallback"
