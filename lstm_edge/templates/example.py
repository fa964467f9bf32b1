"""Embed the model in a Python app: feed samples one at a time as they arrive, carrying the LSTM state (a model
exported as a whole graph, without state I/O, runs whole sequences instead).

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
try:  # first, the runtime reproduces the golden cases here (or finds that pass cached); else one line and exit 1
    runner = lstm_edge.load(HERE, provider="cpu", variant=variant)
except lstm_edge.LstmEdgeError as e:
    raise SystemExit(f"error: {e}") from None

index = json.loads((HERE / "golden" / "index.json").read_text())
inputs, outputs = index.get("inputs", ["x", "h0", "c0"]), index.get("outputs", ["y", "hn", "cn"])
time_major = index.get("layout") == "time_major"
streaming = [c for c in index["cases"] if c["streaming"]]
case = streaming[0] if streaming else index["cases"][-1]  # bidirectional or stateless: whole sequences
arrays = {
    k: np.fromfile(HERE / "golden" / m["file"], "<i8" if m.get("dtype") == "int64" else "<f4").reshape(m["shape"])
    for k, m in case["arrays"].items()
}
state = tuple(arrays[n] for n in inputs if n in ("h0", "c0"))  # (h0, c0) for an LSTM, (h0,) for a GRU

if streaming:
    x = arrays["x"]
    stream = runner.stream(batch=x.shape[1 if time_major else 0])
    stream.state = state
    ys = [stream.step(x[t] if time_major else x[:, t]) for t in range(x.shape[0 if time_major else 1])]
    y = np.concatenate(ys, axis=0 if time_major else 1) if index["head"] in ("sequence", "none") else ys[-1]
    final, how = stream.state, f"streamed {len(ys)} steps one sample per call"  # as a device receives them
else:
    y, final = runner.run(arrays["x"], state or None, arrays.get("lengths"))
    how = "ran whole sequences"
got_all = (y, *final)[: len(outputs)]  # a whole graph without state I/O gives y alone
errors = {
    k: float(np.max(np.abs(got - arrays[k]) / np.maximum(1, np.abs(arrays[k]))))
    for k, got in zip(outputs, got_all, strict=True)
}
ok = all(errors[k] <= case["tolerance"][k] for k in errors)
print(f"{how} with {variant}: y {y.ravel()[:4]}, max error {max(errors.values()):.2e} — {'PASS' if ok else 'FAIL'}")
raise SystemExit(0 if ok else 1)
