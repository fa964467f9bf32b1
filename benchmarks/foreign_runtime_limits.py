"""What each runtime does with the recurrent-node features foreign exporters use — the figures behind
lstm_edge.runtimes.registry.RUNTIME_LIMITS and the README's table. One LSTM (or GRU) node, T=5, B=3, F=2, H=3 (H=4 for GRU),
random weights and state; each runtime's outputs against the float64 ONNX reference (max scaled error), or the
first line of its error. tract runs in a child process: on one of these models it panics and aborts the process.

    .venv/bin/python benchmarks/foreign_runtime_limits.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lstm_edge.errors import first_line
from lstm_edge.runtimes.onnx_reference import evaluator
from lstm_edge.tolerances import scaled_error

T, B, F = 5, 3, 2


def node_model(
    op="LSTM",
    direction="forward",
    layout=0,
    peephole=False,
    seq_lens=False,
    state=True,
    no_c=False,
    repeat=False,
    seed=0,
):
    """One recurrent node; no_c: initial_h without initial_c; repeat: X is z [1, B, F] tiled over T (an
    autoencoder's decoder input), T taken from a second input s [T]."""
    rng = np.random.default_rng(seed)
    H, G = (3, 4) if op == "LSTM" else (4, 3)
    D = 2 if direction == "bidirectional" else 1
    inits = {"W": (D, G * H, F), "R": (D, G * H, H), "B": (D, 2 * G * H)} | ({"P": (D, 3 * H)} if peephole else {})
    x_dims, s_dims = ([B, "T", F], [B, D, H]) if layout else (["T", "B", F], [D, "B", H])
    states = ("h0", "c0") if op == "LSTM" and not no_c else ("h0",)
    ins = [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_dims)]
    pre = []
    if repeat:  # X = Tile(z, [T, 1, 1]) with T = Shape(s)
        ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in (("z", [1, "B", F]), ("s", ["T"]))]
        pre = [
            helper.make_node("Shape", ["s"], ["Tn"]),
            helper.make_node("Concat", ["Tn", "one", "one"], ["reps"], axis=0),
            helper.make_node("Tile", ["z", "reps"], ["X"]),
        ]
    ins += [helper.make_tensor_value_info("seq_lens", TensorProto.INT32, [B])] if seq_lens else []
    ins += [helper.make_tensor_value_info(n, TensorProto.FLOAT, s_dims) for n in states] if state else []
    node_in = ["X", "W", "R", "B", "seq_lens" if seq_lens else ""] + [n if state else "" for n in states]
    node_in += ["P"] if peephole else []
    outs = ["Y", "Y_h", "Y_c"][: 1 + len(states)]
    node = helper.make_node(op, node_in, outs, hidden_size=H, direction=direction, layout=layout, name="rnn")
    g = helper.make_graph(
        [*pre, node],
        "g",
        ins,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outs],
        [numpy_helper.from_array(rng.normal(0, 0.5, s).astype(np.float32), k) for k, s in inits.items()]
        + ([numpy_helper.from_array(np.ones(1, np.int64), "one")] if repeat else []),
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    feeds = {"X": rng.normal(size=(B, T, F) if layout else (T, B, F)).astype(np.float32)}
    if repeat:
        feeds = {"z": rng.normal(size=(1, B, F)).astype(np.float32), "s": np.zeros(T, np.float32)}
    feeds |= {"seq_lens": np.array([5, 2, 4], np.int32)} if seq_lens else {}
    if state:
        feeds |= {n: rng.normal(size=(B, D, H) if layout else (D, B, H)).astype(np.float32) for n in states}
    return m, feeds


CASES = {
    "plain": {},
    "layout=1": {"layout": 1},
    "sequence_lens < T": {"seq_lens": True},
    "peepholes P": {"peephole": True},
    "reverse (LSTM)": {"direction": "reverse"},
    "reverse (GRU)": {"op": "GRU", "direction": "reverse"},
    "bidirectional": {"direction": "bidirectional"},
    "no initial_h, symbolic batch": {"state": False},
    "no initial_c, symbolic batch": {"no_c": True},
    "X tiled over T (autoencoder)": {"repeat": True},
}

CHILD = """
import json, sys, numpy as np, tract
path, feeds = sys.argv[1], np.load(sys.argv[2])
names = json.loads(sys.argv[3])
outs = tract.onnx().load(path).into_model().into_runnable().run([feeds[n] for n in names])
np.savez(sys.argv[4], *[o.to_numpy() for o in outs])
"""


def run_tract(path: Path, feeds: dict, tmp: Path) -> list[np.ndarray] | str:
    np.savez(tmp / "feeds.npz", **feeds)
    r = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(tmp / "feeds.npz"), json.dumps(list(feeds)), str(tmp / "o.npz")],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        panic = "panicked" in r.stderr
        return ("panics (process aborted): " if panic else "error: ") + first_line(
            next((ln for ln in r.stderr.splitlines() if "panicked" in ln or "Error" in ln), r.stderr), 90
        )
    with np.load(tmp / "o.npz") as z:
        return [z[f"arr_{k}"] for k in range(len(z.files))]


def main() -> None:
    import onnxruntime as ort
    import openvino as ov

    print(f"onnxruntime {ort.__version__}, openvino {ov.get_version()}")
    print(f"{'feature':<30} {'ONNX Runtime CPU':<28} {'OpenVINO (f32)':<28} tract")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for label, kw in CASES.items():
            m, feeds = node_model(**kw)
            path = tmp / "m.onnx"
            onnx.save(m, str(path))
            ref = evaluator(m)(feeds)
            names = list(ref)
            row = []
            for runtime in ("ort", "openvino", "tract"):
                try:
                    if runtime == "ort":
                        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
                    elif runtime == "openvino":
                        core = ov.Core()
                        c = core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
                        res = c.create_infer_request().infer(feeds)
                        got = [res[o] for o in c.outputs]
                    else:
                        got = run_tract(path, feeds, tmp)
                        if isinstance(got, str):
                            row.append(got)
                            continue
                    errs = [
                        float(scaled_error(a, ref[n]).max()) if a.shape == ref[n].shape else np.inf
                        for a, n in zip(got, names, strict=True)
                    ]
                    row.append(f"{max(errs):.1e}")
                except Exception as e:  # each runtime's own error types
                    row.append("error: " + first_line(e, 60))
            print(f"{label:<30} {row[0]:<28} {row[1]:<28} {row[2]}")


if __name__ == "__main__":
    main()
