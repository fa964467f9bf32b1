"""The installed package exposes one import namespace: lstm_edge."""

from __future__ import annotations

import subprocess
import sys


def test_package_namespace(tmp_path):
    """After install, only lstm_edge is importable: no bare export or runtimes package."""
    code = "import importlib.util as u; print(u.find_spec('export'), u.find_spec('runtimes'), u.find_spec('lstm_edge.runtimes') is not None)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.stdout.split() == ["None", "None", "True"]
