"""Embed the model in a Python app: feed samples one at a time as they arrive, carrying the LSTM state.

pip install 'lstm-edge[cpu]'
python example.py
"""

import json
from pathlib import Path

import numpy as np

import lstm_edge

HERE = Path(__file__).resolve().parent
manifest = json.loads((HERE / "manifest.json").read_text())
variant = manifest["embed"]["variant"]
runner = lstm_edge.load(HERE, provider="cpu", variant=variant)

index = json.loads((HERE / "golden" / "index.json").read_text())
case = next(c for c in index["cases"] if c["streaming"])
arrays = {k: np.fromfile(HERE / "golden" / m["file"], "<f4").reshape(m["shape"]) for k, m in case["arrays"].items()}

stream = runner.stream(batch=arrays["x"].shape[0])
stream.state = (arrays["h0"], arrays["c0"])
ys = [stream.step(arrays["x"][:, t]) for t in range(arrays["x"].shape[1])]  # one sample per call, as a device
y = np.concatenate(ys, axis=1) if ys[-1].ndim == 3 else ys[-1]  # receives them; a per-step y is [B, 1, O]
h, c = stream.state
errors = {
    k: float(np.max(np.abs(got - arrays[k]) / np.maximum(1, np.abs(arrays[k]))))
    for k, got in (("y", y), ("hn", h), ("cn", c))
}
ok = all(errors[k] <= case["tolerance"][k] for k in errors)
print(
    f"streamed {arrays['x'].shape[1]} steps with {variant}: last y {y.ravel()[:4]}, "
    f"max error {max(errors.values()):.2e} — {'PASS' if ok else 'FAIL'}"
)
raise SystemExit(0 if ok else 1)
