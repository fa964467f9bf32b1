"""Part of every export: run the ONNX model in ONNX Runtime CPU at shapes no trace saw and compare with PyTorch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from lstm_edge.config import ModelConfig
from lstm_edge.data import model_inputs
from lstm_edge.errors import LstmEdgeError, ParityError
from lstm_edge.isolated import failure, run_python
from lstm_edge.tolerances import FP32_ABS, scaled_error

# Inputs in config.input_names order (x[, lengths], h0[, c0]) → outputs in config.output_names order (y, hn[, cn]).
Reference = Callable[..., tuple[np.ndarray, ...]]
VALIDATION_SHAPES = ((1, 1), (1, 17), (3, 1), (3, 17), (3, 300))  # (B, T): none is a trace shape


# Session creation in a child first: what the parent is about to do, with the same options.
_PROBE = """
import sys
import onnxruntime as ort
opts = ort.SessionOptions()
opts.log_severity_level = 3
ort.InferenceSession(sys.argv[1], opts, providers=["CPUExecutionProvider"])
"""


def probe_ort_cpu(path: Path, what: str) -> None:
    """Create an ORT CPU session for the ONNX file at `path` in an isolated child (lstm_edge.isolated) before this
    process does: ONNX Runtime 1.32 crashed natively (SIGSEGV) at session creation for an fp16 graph it accepts
    (issue 17), which would kill the user's process with no message. Costs one child (~0.5 s on this machine).

    Raises LstmEdgeError naming `what` and how the child died (a signal, or ORT's own first error line).
    """
    import onnxruntime as ort  # deferred: heavy, and only needed when a variant is checked

    why = failure(run_python(_PROBE, [str(Path(path).resolve())]))
    if why is not None:
        raise LstmEdgeError(
            f"ONNX Runtime {ort.__version__} cannot create a CPU session for {what}: {why}",
            "report it with the bundle; the other variants are unaffected (quantize --mode MODE makes one at a time)",
        )


def ort_cpu_session(model: onnx.ModelProto | bytes):
    """An ONNX Runtime CPU InferenceSession for a model proto or its bytes, ORT's own logging quiet.

    Raises LstmEdgeError (with the install fix) when onnxruntime is not installed."""
    try:
        import onnxruntime as ort  # deferred: an optional extra, and heavy to import
    except ImportError as e:
        raise LstmEdgeError("export validation needs ONNX Runtime", "pip install 'lstm-edge[cpu]'") from e
    data = model if isinstance(model, bytes) else model.SerializeToString()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def run_quiet(session, names: list[str], feeds: dict) -> list:
    """session.run with ORT's run-time log off: a failing node raises (the caller's one line says it) instead of
    also printing ORT's own error log on stderr (the session's log_severity_level does not reach run-time logs)."""
    import onnxruntime as ort  # deferred: heavy; the session passed in already needed it

    options = ort.RunOptions()
    options.log_severity_level = 4
    return session.run(names, feeds, options)


def spec_of(dims: dict | ModelConfig) -> ModelConfig:
    """The ModelConfig whose inputs a check draws: itself, or the seed's form from a dims dict (input_size,
    num_layers, hidden_size, and optionally x_mean/x_std for realistic inputs)."""
    if isinstance(dims, ModelConfig):
        return dims
    extra = {k: dims[k] for k in ("x_mean", "x_std") if dims.get(k) is not None}
    return ModelConfig(dims["input_size"], dims["hidden_size"], dims["num_layers"], **extra)


def validate(
    model: onnx.ModelProto,
    reference: Reference,
    dims: dict | ModelConfig,
    shapes=VALIDATION_SHAPES,
    tolerance: float = FP32_ABS,
) -> list[dict]:
    """Rows of (case, output, max scaled error); raises ParityError with the table if any exceeds `tolerance`.

    dims: the model's ModelConfig (every form: token ids, lengths, GRU's state), or for the seed's form a dict of
    input_size, num_layers, hidden_size, and optionally x_mean/x_std.
    """
    config = spec_of(dims)
    session = ort_cpu_session(model)
    declared = {o.name: [d.dim_value if d.HasField("dim_value") else None for d in o.type.tensor_type.shape.dim]
                for o in model.graph.output}  # fmt: skip
    rows, failed = [], False
    for B, T in shapes:
        for random_state in (False, True):
            inputs = model_inputs(config, B, T, random_state, seed=B * 1000 + T)
            got = session.run(list(config.output_names), dict(zip(config.input_names, inputs, strict=True)))
            want = reference(*inputs)
            for name, a, b in zip(config.output_names, got, want, strict=True):
                if a.shape != b.shape:
                    raise ParityError(f"ONNX output {name} has shape {a.shape}, PyTorch {b.shape} (B={B}, T={T})")
                if any(d is not None and d != n for d, n in zip(declared.get(name, []), a.shape, strict=False)):
                    raise ParityError(
                        f"ONNX output {name} is declared {declared[name]} but has shape {a.shape} (B={B}, T={T})",
                        "an axis was frozen at the example's size; declare it symbolic",
                    )
                err = float(scaled_error(a, b).max()) if a.size else 0.0
                ok = err <= tolerance
                failed |= not ok
                rows.append(
                    {
                        "batch": B,
                        "seq": T,
                        "state": "random" if random_state else "zero",
                        "output": name,
                        "max_scaled_error": err,
                        "ok": ok,
                    }
                )
    if failed:
        raise ParityError(
            "the exported model differs from PyTorch beyond the float32 tolerance",
            "nothing was written; report this with the table above",
            report=format_rows(rows, tolerance),
        )
    return rows


def format_rows(rows: list[dict], tolerance: float) -> str:
    """The validation rows as a plain-text table (B, T, state, output, max scaled error; ✗ past `tolerance`)."""
    lines = [f"{'B':>3} {'T':>5} {'state':>6} {'out':>3}  max |Δ|/max(1,|ref|)   (tolerance {tolerance:.0e})"]
    for r in rows:
        mark = "" if r["ok"] else "  ✗"
        lines.append(
            f"{r['batch']:>3} {r['seq']:>5} {r['state']:>6} {r['output']:>3}  {r['max_scaled_error']:.3e}{mark}"
        )
    return "\n".join(lines)
