"""Where onnxruntime-web (WASM, single-threaded, as the web target runs it) loses float32 accuracy: its sigmoid and
tanh against exact rounding, and its error against the float64 reference over T beside ORT CPU's on the same draws.
The measurement behind the web target's fp32 bound (lstm_edge.targets.web: WEB_FP32_DRIFT_PER_STEP).

    .venv/bin/python benchmarks/web_fp32_drift.py [--draws 4] [--batch 16] [BUNDLE]

Runs onnxruntime-web under Node.js (the same .wasm the browser loads) from tests/embed/npm/node_modules
(`make embed-deps`). Part 1: a one-node Sigmoid and Tanh graph on a dense grid z ∈ [-16, 16], worst mean signed
error over 0.25-wide bins and worst single error. Part 2: worst max scaled error of y/hn/cn against the float64
checkpoint at T ∈ {100, 300, 1000} for ORT-web and ORT CPU, and ORT-web's per-step excess over FP32_ABS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

import lstm_edge
from lstm_edge.bundle import Bundle
from lstm_edge.cases import reference_runner
from lstm_edge.data import probe_inputs
from lstm_edge.tolerances import FP32_ABS, scaled_error

ROOT = Path(__file__).resolve().parents[1]
ORT_WEB = ROOT / "tests" / "embed" / "npm" / "node_modules" / "onnxruntime-web"
NODE_RUN = """
import { createRequire } from 'module';
import { readFileSync, writeFileSync } from 'fs';
const require = createRequire(import.meta.url);
const ort = require(process.argv[2]);
ort.env.wasm.numThreads = 1;
const job = JSON.parse(readFileSync(process.argv[3], 'utf8'));
const session = await ort.InferenceSession.create(job.model, { executionProviders: ['wasm'] });
for (const run of job.runs) {
  const feeds = {};
  for (const [name, f] of Object.entries(run.inputs)) {
    const b = readFileSync(f.file);
    feeds[name] = new ort.Tensor('float32', new Float32Array(b.buffer, b.byteOffset, b.length / 4), f.shape);
  }
  const out = await session.run(feeds);
  for (const [name, file] of Object.entries(run.outputs)) writeFileSync(file, Buffer.from(out[name].data.buffer));
}
"""


def run_web(tmp: Path, model: Path, feeds: list[dict[str, np.ndarray]], outputs: list[str]) -> list[dict]:
    """Each feed dict run by onnxruntime-web under Node; returns {output: float32 array (flat)} per feed."""
    runs = []
    for k, feed in enumerate(feeds):
        inputs = {}
        for name, a in feed.items():
            f = tmp / f"{k}.{name}.in"
            np.ascontiguousarray(a, "<f4").tofile(f)
            inputs[name] = {"file": str(f), "shape": list(a.shape)}
        runs.append({"inputs": inputs, "outputs": {o: str(tmp / f"{k}.{o}.out") for o in outputs}})
    (tmp / "job.json").write_text(json.dumps({"model": str(model), "runs": runs}))
    (tmp / "run.mjs").write_text(NODE_RUN)
    subprocess.run(["node", str(tmp / "run.mjs"), str(ORT_WEB), str(tmp / "job.json")], check=True, timeout=1800)
    return [{o: np.fromfile(f, "<f4") for o, f in r["outputs"].items()} for r in runs]


def activations(tmp: Path) -> None:
    z = np.linspace(-16, 16, 2_000_001).astype(np.float32)
    bins = np.minimum(np.digitize(z, np.arange(-16, 16.01, 0.25)), 128)
    for op, exact in (("Sigmoid", 1 / (1 + np.exp(-z.astype(np.float64)))), ("Tanh", np.tanh(z.astype(np.float64)))):
        vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n"]) for n in ("z", "s")]
        g = helper.make_graph([helper.make_node(op, ["z"], ["s"])], op, [vi[0]], [vi[1]])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        path = tmp / f"{op}.onnx"
        onnx.save(m, str(path))
        web = run_web(tmp, path, [{"z": z}], ["s"])[0]["s"].astype(np.float64)
        import onnxruntime as ort  # deferred: only this part compares with ORT CPU's kernel

        cpu = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"z": z})[0]
        for label, got in (
            ("ort-web", web),
            ("ort cpu", cpu.astype(np.float64)),
            ("exact f32", exact.astype(np.float32)),
        ):
            d = got - exact
            mean_bias = max(abs(d[bins == b].mean()) for b in np.unique(bins))
            print(f"{op:<8} {label:<10} worst bin mean bias {mean_bias:.2e}   worst |error| {np.abs(d).max():.2e}")


def drift(tmp: Path, bundle_path: Path, draws: int, batch: int) -> None:
    bundle = Bundle.open(bundle_path)
    cpu = lstm_edge.load(bundle_path, provider="cpu")
    print(f"\n{'T':>5} {'runtime':<8} worst max scaled error y / hn / cn   (excess over FP32_ABS per step)")
    with reference_runner(bundle) as ref:
        for T in (100, 300, 1000):
            feeds, wants = [], []
            for d in range(draws):
                x, h0, c0 = probe_inputs(bundle.config, batch, T, True, 7000 + d)
                y, (hn, cn) = ref.run(x, (h0, c0))
                feeds.append({"x": x, "h0": h0, "c0": c0})
                wants.append({"y": y, "hn": hn, "cn": cn})
            web = run_web(tmp, bundle.artifact("fp32"), feeds, ["y", "hn", "cn"])
            for label, outs in (
                ("ort-web", web),
                (
                    "ort cpu",
                    [
                        dict(
                            zip(
                                ("y", "hn", "cn"),
                                (lambda r: (r[0], *r[1]))(cpu.run(f["x"], (f["h0"], f["c0"]))),
                                strict=True,
                            )
                        )
                        for f in feeds
                    ],
                ),
            ):
                worst = {
                    k: max(
                        float(scaled_error(o[k].reshape(w[k].shape), w[k]).max())
                        for o, w in zip(outs, wants, strict=True)
                    )
                    for k in ("y", "hn", "cn")
                }
                excess = (max(worst.values()) - FP32_ABS) / T
                print(f"{T:>5} {label:<8} {worst['y']:.2e} / {worst['hn']:.2e} / {worst['cn']:.2e}   ({excess:+.1e})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundle", nargs="?", default=str(ROOT / "models" / "adding"))
    p.add_argument("--draws", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--no-activations", action="store_true")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not a.no_activations:
            activations(Path(tmp))
        drift(Path(tmp), Path(a.bundle), a.draws, a.batch)


if __name__ == "__main__":
    main()
