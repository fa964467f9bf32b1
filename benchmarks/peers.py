"""lstm-edge against its edge peers, LiteRT and ExecuTorch (XNNPACK), on this CPU: 1 thread each, the same weights.

Recipe (optional; never part of `make test`). `make peers` builds an isolated, git-ignored venv `.venv-peers/`
(the torch==2.13.0 CPU wheel first, lstm-edge editable with [cpu,torch,plots], then executorch, ai-edge-litert,
tensorflow-cpu and tf-keras — TensorFlow is only the .tflite converter) and runs

    .venv-peers/bin/python benchmarks/peers.py [--rounds 40] [--cache .venv-peers/cache] [--json OUT]

(--cache keeps the converted .tflite and lowered .pte files, keyed by the weights: converting and lowering take
~15 minutes of the first run at load ~15; the JSON goes to benchmarks/results/peers.json unless --json says.)

Issue 25 item 7. Two sizes: the shipped adding bundle (input 2, hidden 64, 2 layers, linear head) and the seed's
(input 100, hidden 256, 2 layers, random weights, exported and dynamically quantized into a temporary bundle).
Two cases: a streaming step (B=1, one time step, state carried by the caller) and a whole sequence B1·T100 from
zero state. Contenders, every one computing the whole model (input normalization, LSTM, head, de-normalization):

- lstm-edge: `C fp32`, `C int8` (the `c` runner: generated C, -O3 -march=native; stream.step / run) and
  `ORT fp32`, `ORT int8` (the `cpu` runner on model.onnx / model.int8.onnx, intra-op threads 1).
- LiteRT (ai-edge-litert's Interpreter, num_threads=1, its default XNNPACK delegate): .tflite files converted by
  TensorFlow's TFLiteConverter from a tf_keras model holding the PyTorch weights. The sequence model is a stack of
  keras LSTM layers (fused into UNIDIRECTIONAL_SEQUENCE_LSTM); the step model is LSTMCells with (h, c) per layer as
  inputs and outputs (a fused LSTM with initial and returned state converts to a WHILE loop instead). int8: the
  converter's dynamic-range quantization (Optimize.DEFAULT: int8 weights, hybrid kernels).
- ExecuTorch 1.5.1 (the pybindings runtime, XNNPACK delegate, threadpool reset to 1 thread): torch.export of the
  same weights as nn.Linear per layer and gate (W_ih rows with b_ih + b_hh; W_hh rows), the time loop unrolled as
  aten.lstm's decomposition does, lowered with to_edge_transform_and_lower(XnnpackPartitioner) into one delegate.
  int8: PT2E with XNNPACKQuantizer, symmetric, per-channel weights, dynamic activations. Its B1·T100 is 10 calls
  of a 10-step program carrying (h, c) (ET_CHUNK: the unrolled 100-step graph had not lowered after 8 minutes here),
  so it pays 9 Python calls more than the others (~10-40 µs each).

Before timing, every contender's y (and, for the step, y after 100 steps fed one by one) is compared with the
PyTorch model's: fp32 within `fp32_tolerance(100)` (scaled error), int8 within the bundle's recorded int8 bound
(`lstm_edge.tolerances.tolerance`). One that answers differently is reported with its error and not timed.

Timing: contenders interleaved in rotating rounds; per round each takes a chunk of `--chunk` steps and one
sequence. Process CPU time (time.process_time) beside wall time; figures are medians over rounds; ratios are of CPU
medians, lstm-edge route / peer (below 1: lstm-edge takes less time). /proc/loadavg is recorded before and after.
Everything runs in one process (the peers venv holds lstm-edge too).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf_keras (Keras 2): its LSTM fuses into the TFLite LSTM op
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import lstm_edge  # noqa: E402
from lstm_edge.checkpoint import load_checkpoint  # noqa: E402
from lstm_edge.environment import cpu_model  # noqa: E402
from lstm_edge.runtimes import RunnerOptions, open_runner  # noqa: E402
from lstm_edge.tolerances import fp32_tolerance, scaled_error, tolerance  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from c_step import seed_model_and_bundle  # noqa: E402  (a sibling script, not a package)

T = 100
# ExecuTorch runs B1·T100 as 10 calls of a 10-step program carrying (h, c): lowering the unrolled 100-step graph had
# not finished after 8 minutes at load ~15 on the 2-core machine (the lowering passes re-trace the whole graph many
# times); the 10-step one takes 2-3 minutes there.
ET_CHUNK = 10
LSTM_EDGE = ("C fp32", "C int8", "ORT fp32", "ORT int8")


@dataclass
class Route:
    """One contender: step(x_t [1, F]) → y [1, O] with the state carried inside; reset() to zero state;
    seq(x [1, T, F]) → y [1, O] from zero state."""

    precision: str
    step: Callable[[np.ndarray], np.ndarray]
    reset: Callable[[], None]
    seq: Callable[[np.ndarray], np.ndarray]


def lstm_edge_routes(bundle: Path) -> dict[str, Route]:
    """The C and ORT runners on the bundle, fp32 and int8."""
    routes = {}
    for name, provider, variant in (
        ("C fp32", "c", "fp32"),
        ("C int8", "c", "int8"),
        ("ORT fp32", "cpu", "fp32"),
        ("ORT int8", "cpu", "int8"),
    ):
        r = open_runner(bundle, provider, options=RunnerOptions(variant=variant, threads=1))
        s = r.stream()
        routes[name] = Route(variant, s.step, s.reset, lambda x, r=r: r.run(x)[0])
    return routes


def _weights(model: torch.nn.Module) -> dict:
    """The reference model's weights as numpy: per layer (W_ih, W_hh, b_ih + b_hh), the head, the normalization."""
    lstm, g = model.lstm, (lambda t: t.detach().numpy().astype(np.float32))
    return {
        "layers": [
            (
                g(getattr(lstm, f"weight_ih_l{k}")),  # (4H, F_l)
                g(getattr(lstm, f"weight_hh_l{k}")),  # (4H, H)
                g(getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")),  # (4H,)
            )
            for k in range(lstm.num_layers)
        ],
        "head": (g(model.head.weight), g(model.head.bias)),  # (O, H), (O,)
        "x": (g(model.x_mean), g(model.x_std)),
        "y": (g(model.y_mean), g(model.y_std)) if model.y_std.numel() else None,
    }


CACHE: Path | None = None  # --cache: built .tflite / .pte files, keyed by the weights' digest


def cached(kind: str, w: dict, build: Callable[[], bytes]) -> bytes:
    """build(), or the file an earlier run built from the same weights (a conversion takes minutes here)."""
    if CACHE is None:
        return build()
    arrays = [a for layer in w["layers"] for a in layer] + [*w["head"], *w["x"], *(w["y"] or ())]
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()[:16]
    path = CACHE / f"{kind}-{digest}"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        tmp.write_bytes(build())
        os.replace(tmp, path)
    return path.read_bytes()


def _tflite(w: dict, step: bool, int8: bool) -> bytes:
    """A .tflite of the model: the step form (LSTMCells, x [1, 1, F] and h_k, c_k in and out) or the sequence form
    (fused LSTM layers, x [1, T, F] → y)."""
    import tensorflow as tf
    import tf_keras as K

    F = w["layers"][0][0].shape[1]
    H = w["layers"][0][1].shape[1]
    L = len(w["layers"])
    x_in = K.Input((1 if step else T, F), batch_size=1, name="x")
    states = [K.Input((H,), batch_size=1, name=f"{s}{k}") for s in "hc" for k in range(L)] if step else []
    z, outs = (x_in - w["x"][0]) / w["x"][1], {}
    for k, (W_ih, W_hh, b) in enumerate(w["layers"]):
        keras_w = [W_ih.T, W_hh.T, b]  # keras: kernel (F, 4H), recurrent (H, 4H); gate blocks i, f, c, o as torch's
        if step:
            cell = K.layers.LSTMCell(H)
            z, (h, c) = cell(z[:, 0] if k == 0 else z, [states[k], states[L + k]])
            cell.set_weights(keras_w)
            outs[f"h{k}_out"], outs[f"c{k}_out"] = h, c
        else:
            layer = K.layers.LSTM(H, return_sequences=k < L - 1)
            z = layer(z)
            layer.set_weights(keras_w)
    head = K.layers.Dense(w["head"][0].shape[0])
    y = head(z)
    head.set_weights([w["head"][0].T, w["head"][1]])
    if w["y"] is not None:
        y = y * w["y"][1] + w["y"][0]
    outs["y"] = y
    named = [K.layers.Identity(name=n)(t) for n, t in outs.items()]
    conv = tf.lite.TFLiteConverter.from_keras_model(K.Model([x_in, *states], named))
    if int8:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range: int8 weights, float activations
    return conv.convert()


def litert_routes(model: torch.nn.Module) -> dict[str, Route]:
    """LiteRT fp32 and int8: a step interpreter and a sequence interpreter each, num_threads=1."""
    from ai_edge_litert.interpreter import Interpreter

    w = _weights(model)
    L = len(w["layers"])

    def interpreter(fb: bytes):
        it = Interpreter(model_content=fb, num_threads=1)
        it.allocate_tensors()
        sig = it.get_signature_runner()
        ins = {k: v["index"] for k, v in sig.get_input_details().items()}
        outs = {k: v["index"] for k, v in sig.get_output_details().items()}
        return it, ins, outs

    routes = {}
    for prec in ("fp32", "int8"):
        int8 = prec == "int8"
        st, st_in, st_out = interpreter(cached(f"step-{prec}.tflite", w, partial(_tflite, w, True, int8)))
        sq, sq_in, sq_out = interpreter(cached(f"seq-{prec}.tflite", w, partial(_tflite, w, False, int8)))
        H = w["layers"][0][1].shape[1]
        state = {f"{s}{k}": np.zeros((1, H), np.float32) for s in "hc" for k in range(L)}

        def step(x_t, it=st, i=st_in, o=st_out, state=state):
            it.set_tensor(i["x"], x_t.reshape(1, 1, -1))
            for k, v in state.items():
                it.set_tensor(i[k], v)
            it.invoke()
            for k in state:
                state[k] = it.get_tensor(o[f"{k}_out"])
            return it.get_tensor(o["y"])

        def reset(state=state):
            for v in state.values():
                v.fill(0.0)

        def seq(x, it=sq, i=sq_in["x"], o=sq_out["y"]):
            it.set_tensor(i, x)
            it.invoke()
            return it.get_tensor(o)

        routes[f"LiteRT {prec}"] = Route(prec, step, reset, seq)
    return routes


class _LinearForm(torch.nn.Module):
    """The reference model as nn.Linear per layer and gate (the same weights, W_ih's gate rows with b_ih + b_hh, and
    W_hh's) over an unrolled time loop: what ExecuTorch exports and PT2E quantizes. No split, select or slice inside
    the loop: a split or select there (chunk, h0[k]) stays outside XNNPACK and cuts the graph into one delegate per
    step, which made lowering many times slower."""

    def __init__(self, w: dict) -> None:
        super().__init__()

        def linear(W, b=None):
            m = torch.nn.Linear(W.shape[1], W.shape[0], bias=b is not None)
            m.weight.data = torch.from_numpy(np.ascontiguousarray(W))
            if b is not None:
                m.bias.data = torch.from_numpy(np.ascontiguousarray(b))
            return m

        H = w["layers"][0][1].shape[1]
        gates = [slice(g * H, (g + 1) * H) for g in range(4)]  # i, f, g, o
        self.ih = torch.nn.ModuleList(
            torch.nn.ModuleList(linear(W_ih[s], b[s]) for s in gates) for W_ih, _, b in w["layers"]
        )
        self.hh = torch.nn.ModuleList(torch.nn.ModuleList(linear(W_hh[s]) for s in gates) for _, W_hh, _ in w["layers"])
        self.head = linear(*w["head"])
        self.norm = [torch.from_numpy(a) for a in w["x"]]
        self.denorm = None if w["y"] is None else [torch.from_numpy(a) for a in w["y"]]

    def forward(self, x, h0, c0):
        """x (1, T, F), h0 and c0 (L, 1, H) → y (1, O), h_n, c_n (L, 1, H)."""
        x = (x - self.norm[0]) / self.norm[1]  # (1, T, F)
        h, c = list(h0.unbind(0)), list(c0.unbind(0))  # (1, H) per layer
        for inp in x.unbind(1):  # (1, F) per step
            for k, (ih, hh) in enumerate(zip(self.ih, self.hh, strict=True)):  # layer k at step t reads k-1 at t
                i, f, g, o = (ih[j](inp) + hh[j](h[k]) for j in range(4))  # (1, H) each
                c[k] = torch.sigmoid(f) * c[k] + torch.sigmoid(i) * torch.tanh(g)
                h[k] = torch.sigmoid(o) * torch.tanh(c[k])
                inp = h[k]
        y = self.head(h[-1])
        if self.denorm is not None:
            y = y * self.denorm[1] + self.denorm[0]
        return y, torch.stack(h), torch.stack(c)


def _pte(module: torch.nn.Module, args: tuple, int8: bool) -> bytes:
    """Export, (quantize,) lower to XNNPACK, serialize."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    if int8:
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        cfg = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True)
        prepared = prepare_pt2e(torch.export.export(module, args).module(), XNNPACKQuantizer().set_global(cfg))
        prepared(*args)
        module = convert_pt2e(prepared)
    ep = torch.export.export(module, args)
    return to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch().buffer


def executorch_routes(model: torch.nn.Module) -> dict[str, Route]:
    """ExecuTorch fp32 and int8: a 1-step and an ET_CHUNK-step program (state in and out), XNNPACK, 1 thread."""
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
    from executorch.runtime import Runtime

    _unsafe_reset_threadpool(1)
    w = _weights(model)
    form = _LinearForm(w).eval()
    L, H, F = len(w["layers"]), w["layers"][0][1].shape[1], w["layers"][0][0].shape[1]
    zeros = torch.zeros(L, 1, H)
    rt = Runtime.get()
    routes = {}
    for prec in ("fp32", "int8"):
        methods = {}
        for steps in (1, ET_CHUNK):
            args = (torch.rand(1, steps, F), torch.zeros(L, 1, H), torch.zeros(L, 1, H))  # h0, c0: two tensors, or
            # torch.export takes them for one input and the program reads h0 as c0 too
            pte = cached(f"T{steps}-{prec}.pte", w, partial(_pte, form, args, prec == "int8"))
            program = rt.load_program(pte)  # it reads from `pte` without owning it: both are kept with the method
            methods[steps] = (pte, program, program.load_method("forward"))
        state = [zeros.clone(), zeros.clone()]

        def step(x_t, m=methods[1], state=state):
            y, h, c = m[2].execute([torch.from_numpy(x_t.reshape(1, 1, -1)), state[0], state[1]])
            state[0], state[1] = h.clone(), c.clone()  # outputs live in the program's planned memory: copy them
            return y.numpy()

        def reset(state=state):
            state[0], state[1] = zeros.clone(), zeros.clone()

        def seq(x, m=methods[ET_CHUNK]):
            h = c = zeros
            for t in range(0, x.shape[1], ET_CHUNK):
                y, h, c = m[2].execute([torch.from_numpy(x[:, t : t + ET_CHUNK]), h.clone(), c.clone()])
            return y.numpy()

        routes[f"ExecuTorch {prec}"] = Route(prec, step, reset, seq)
    return routes


def check(route: Route, model: torch.nn.Module, xs: np.ndarray, bound: float) -> dict:
    """Scaled error against the PyTorch model of the sequence y and of y after T single steps; ok within bound."""
    with torch.no_grad():
        want = model(torch.from_numpy(xs))[0].numpy()  # (1, O)
    route.reset()
    for t in range(xs.shape[1]):
        y_step = route.step(np.ascontiguousarray(xs[:, t]))
    route.reset()
    err = {
        "seq": float(scaled_error(np.asarray(route.seq(xs)), want).max()),
        "step": float(scaled_error(np.asarray(y_step).reshape(want.shape), want).max()),
    }
    return err | {"bound": bound, "ok": max(err.values()) <= bound, "y_ref_max_abs": float(np.abs(want).max())}


def measure(routes: dict[str, Route], x_t: np.ndarray, xs: np.ndarray, rounds: int, chunk: int) -> dict:
    """Per case, CPU and wall medians (µs) per contender over rotating rounds, and the ratios lstm-edge / peer."""
    names = list(routes)
    cpu = {case: {k: [] for k in names} for case in ("step", "seq")}
    wall = {case: {k: [] for k in names} for case in ("step", "seq")}
    for r in routes.values():  # warm-up
        r.reset()
        for _ in range(chunk):
            r.step(x_t)
        r.seq(xs)
    pc, wc = time.process_time, time.perf_counter
    for i in range(rounds):
        for k in names[i % len(names) :] + names[: i % len(names)]:
            step, seq = routes[k].step, routes[k].seq
            c0, w0 = pc(), wc()
            for _ in range(chunk):
                step(x_t)
            c1, w1 = pc(), wc()
            seq(xs)
            c2, w2 = pc(), wc()
            cpu["step"][k].append((c1 - c0) / chunk)
            wall["step"][k].append((w1 - w0) / chunk)
            cpu["seq"][k].append(c2 - c1)
            wall["seq"][k].append(w2 - w1)
    out = {}
    for case, label in (("step", "stream step"), ("seq", f"B1xT{T}")):
        med = {k: float(np.median(v) * 1e6) for k, v in cpu[case].items()}
        out[label] = {
            "cpu_us_median": med,
            "wall_us_median": {k: float(np.median(v) * 1e6) for k, v in wall[case].items()},
            "ratios_cpu": {
                f"{a} / {b}": med[a] / med[b] for a in LSTM_EDGE if a in med for b in med if b not in LSTM_EDGE
            },
        }
    return out


def run_size(label: str, bundle: Path, model: torch.nn.Module, peers: dict, rounds: int, chunk: int) -> dict:
    """Build every contender at one size, check each against the model, time those that pass."""
    model = model.eval()
    b = lstm_edge.bundle.Bundle.open(bundle)
    F = b.config.input_size
    routes = lstm_edge_routes(bundle)
    blocked = {}
    for family, build in peers.items():
        print(f"  building {family} …", flush=True)
        t0 = time.perf_counter()
        try:
            routes |= build(model)
        except Exception as e:  # a peer that cannot build this model is reported, with its reason
            blocked[family] = f"{type(e).__name__}: {e}"[:300]
        print(f"    {time.perf_counter() - t0:.0f} s", flush=True)
    xs = np.random.default_rng(1).random((1, T, F), dtype=np.float32)
    bounds = {"fp32": fp32_tolerance(T), "int8": tolerance(b.entry("int8"), T, "y")}
    checks = {k: check(r, model, xs, bounds[r.precision]) for k, r in routes.items()}
    timed = {k: r for k, r in routes.items() if checks[k]["ok"]}
    x_t = np.ascontiguousarray(xs[:, 0])
    cfg = b.config
    return {
        "model": f"{label} ({cfg.input_size} → {cfg.hidden_size} × {cfg.num_layers})",
        "checks": checks,
        "not_built": blocked,
        "not_timed": sorted(set(routes) - set(timed)),
        "cases": measure(timed, x_t, xs, rounds, chunk),
    }


def peer_builders() -> tuple[dict, dict]:
    """The peers importable here (name → builder) and, for the others, the one-line reason."""
    builders, missing = {}, {}
    for name, module, build in (
        ("LiteRT", "ai_edge_litert", litert_routes),
        ("ExecuTorch", "executorch.runtime", executorch_routes),
    ):
        try:
            __import__(module)
            builders[name] = build
        except ImportError as e:
            missing[name] = f"not installed here ({e}); run `make peers`"
    return builders, missing


def versions() -> dict:
    out = {}
    for dist in ("lstm-edge", "torch", "onnxruntime", "executorch", "ai-edge-litert", "tensorflow-cpu", "tf-keras"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    return out


def print_table(report: dict) -> None:
    """Per size and case: each contender's CPU and wall medians and the ratios of lstm-edge's routes to it."""
    print(f"{report['cpu']}; loadavg {report['loadavg_before']} → {report['loadavg_after']}; 1 thread; µs (medians)")
    for name, why in report["peers_missing"].items():
        print(f"{name}: not measured — {why}")
    for res in report["results"]:
        for fam, why in res["not_built"].items():
            print(f"{res['model']}: {fam} not built — {why}")
        for k in res["not_timed"]:
            c = res["checks"][k]
            print(
                f"{res['model']}: {k} answers differently (seq {c['seq']:.2e}, step {c['step']:.2e} > {c['bound']:.1e})"
            )
        for case, r in res["cases"].items():
            print(f"\n{res['model']}, {case}")
            print(
                f"  {'contender':<16} {'CPU µs':>10} {'wall µs':>10}   "
                + "  ".join(f"{a + ' /':>10}" for a in LSTM_EDGE)
            )
            for k, v in r["cpu_us_median"].items():
                ratios = "  ".join(f"{r['ratios_cpu'].get(f'{a} / {k}', float('nan')):10.2f}" for a in LSTM_EDGE)
                print(f"  {k:<16} {v:10.1f} {r['wall_us_median'][k]:10.1f}   " + ("" if k in LSTM_EDGE else ratios))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--chunk", type=int, default=20, help="steps per contender's turn in a round")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/peers.json"))
    ap.add_argument("--peers", default="LiteRT,ExecuTorch", help="which peers to build (comma-separated)")
    ap.add_argument("--sizes", default="adding,seed", help="which sizes to run (comma-separated)")
    ap.add_argument("--cache", type=Path, help="keep built .tflite/.pte files here and reuse them")
    a = ap.parse_args()
    global CACHE
    CACHE = a.cache
    torch.set_num_threads(1)
    builders, missing = peer_builders()
    for name in set(builders) - set(a.peers.split(",")):
        missing[name] = "not selected (--peers)"
        del builders[name]
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if "adding" in a.sizes:
            print("adding (models/adding)", flush=True)
            model = load_checkpoint(lstm_edge.bundle.Bundle.open("models/adding").checkpoint())[0]
            results.append(run_size("adding", Path("models/adding"), model, builders, a.rounds, a.chunk))
        if "seed" in a.sizes:
            print("seed size (random weights)", flush=True)
            bundle, model = seed_model_and_bundle(Path(tmp))
            results.append(run_size("seed", bundle, model, builders, a.rounds, a.chunk))
    report = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "loadavg_before": " ".join(load_before),
        "loadavg_after": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "threads": 1,
        "rounds": a.rounds,
        "chunk": a.chunk,
        "process": "one process: lstm-edge and the peers share the .venv-peers interpreter",
        "versions": versions(),
        "peers_missing": missing,
        "results": results,
    }
    print_table(report)
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
