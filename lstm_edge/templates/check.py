"""Check the HTTP server end to end: start server.py on a free port, POST every golden case to /v1/predict, compare
each output with the golden one at the case's own bound (golden/index.json: max |got - want| / max(1, |want|)),
print PASS or FAIL per case, stop the server, exit 0 when every case passes and 1 otherwise.

python check.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
INDEX = json.loads((HERE / "golden" / "index.json").read_text())


def case_arrays(case: dict) -> dict[str, np.ndarray]:
    """One golden case's arrays, read from their raw little-endian .bin files."""
    return {
        k: np.fromfile(HERE / "golden" / m["file"], "<i8" if m.get("dtype") == "int64" else "<f4").reshape(m["shape"])
        for k, m in case["arrays"].items()
    }


def call(url: str, body: dict | None = None) -> dict:
    """GET (body None) or POST JSON to url; the JSON answer, or {"error": ...} with the HTTP status for a refusal."""
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=120) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return {"error": f"HTTP {e.code}: {json.loads(e.read()).get('error')}"}


def check_case(url: str, case: dict) -> bool:
    """POST one case's inputs; print PASS or FAIL with its worst error and bound; True when it passes."""
    a = case_arrays(case)
    got = call(f"{url}/v1/predict", {k: a[k].tolist() for k in INDEX["inputs"] if k in a})
    if "error" in got:
        print(f"FAIL {case['name']}: {got['error']}")
        return False
    worst, ok = (-1.0, INDEX["outputs"][0], 0.0), True  # every output exact (error 0) still names one
    for name in INDEX["outputs"]:
        want, bound = a[name], case["tolerance"][name]
        have = np.asarray(got.get(name, []), dtype=np.float32)
        if have.shape != want.shape:
            print(f"FAIL {case['name']}: {name} has shape {have.shape} where the golden one has {want.shape}")
            return False
        err = float(np.max(np.abs(have - want) / np.maximum(1, np.abs(want))))
        ok &= err <= bound
        worst = max(worst, (err / bound, name, err), key=lambda w: w[0])
    _, name, err = worst
    print(
        f"{'PASS' if ok else 'FAIL'} {case['name']}: max error {err:.2e} ({name}, bound {case['tolerance'][name]:.1e})"
    )
    return ok


def main() -> int:
    """Start the server, check every case, stop it; the exit status."""
    with tempfile.TemporaryFile("w+") as log:  # the server's request log and errors, shown if it fails to start
        server = subprocess.Popen(
            [sys.executable, str(HERE / "server.py"), "--port", "0"], stdout=subprocess.PIPE, stderr=log, text=True
        )
        try:
            line = server.stdout.readline()  # "serving … on http://127.0.0.1:PORT", or EOF when it exits
            if not line.startswith("serving"):
                server.wait(timeout=60)
                log.seek(0)
                print(f"FAIL server.py exited {server.returncode}: {(log.read().strip().splitlines() or [''])[-1]}")
                return 1
            url = line.split()[-1]
            health = call(f"{url}/healthz")
            print(f"server {url}: {json.dumps(health)}")
            results = [check_case(url, case) for case in INDEX["cases"]]
        finally:
            server.terminate()
            server.wait(timeout=30)
    n = len(results)
    print(f"{sum(results)}/{n} golden cases over HTTP — {'PASS' if all(results) else 'FAIL'}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
