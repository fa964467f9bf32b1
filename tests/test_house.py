"""The house holds its shape: scripts/house_metrics.py --check (files ≤ 450 lines, functions ≤ 80, no import cycles,
no private names borrowed, deferred imports with their reason, public docstrings ≥ 95%) passes on the library."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_house_metrics_targets_are_met():
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "house_metrics.py"), "--check", "--root", str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
