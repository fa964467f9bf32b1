"""`lstm-edge import --rebuild`: a foreign graph whose recurrence is a plain LSTM stack, re-exported clean.

The weights of each ONNX LSTM node are mapped back to nn.LSTM (gate blocks i,o,f,c → PyTorch's i,f,g,o; B = [Wb, Rb]
→ bias_ih, bias_hh), the model rebuilt as an LSTMModel with an identity head (y = the last layer's outputs, exactly),
and exported by the weight-level builder: fused nodes with weights as initializers, h0/c0 inputs and hn/cn outputs,
symbolic batch and time, layout=0, no sequence_lens. Before anything is written the rebuilt model is compared with
the original in float64 (the original through onnx.reference, the rebuild through torch) at B=2, T=5, zero and random
state: anything beyond MAPPING_F64 means the graph held more than a plain stack, and the rebuild is refused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from lstm_edge.atomic import staged_dir
from lstm_edge.bundle import MANIFEST
from lstm_edge.config import C0, CN, H0, HN, X, Y
from lstm_edge.errors import LstmEdgeError
from lstm_edge.export.exporter import export_bundle
from lstm_edge.export.foreign import Contract, ImportConfig, ImportResult, drop_lengths, free_axes, learn_contract, wrap
from lstm_edge.export.lint import Finding
from lstm_edge.export.plan import ExportConfig
from lstm_edge.model import LSTMModel, ModelConfig
from lstm_edge.runtimes.onnx_reference import evaluator
from lstm_edge.runtimes.signature import Signature
from lstm_edge.tolerances import MAPPING_F64, scaled_error

ONNX_TO_TORCH_GATES = (0, 2, 3, 1)  # ONNX blocks i,o,f,c → PyTorch i,f,g,o


def _from_onnx_gates(w: np.ndarray, hidden: int) -> np.ndarray:
    blocks = [w[k * hidden : (k + 1) * hidden] for k in range(4)]
    return np.concatenate([blocks[k] for k in ONNX_TO_TORCH_GATES], axis=0)


def _plain_stack(model: onnx.ModelProto) -> list[dict[str, np.ndarray]]:
    """Per layer {w_ih, w_hh, b_ih, b_hh} in PyTorch's layout; LstmEdgeError naming what is not a plain stack."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type in ("LSTM", "GRU", "RNN")]
    if not nodes:
        raise LstmEdgeError("--rebuild found no LSTM node", "import without --rebuild")
    layers, H = [], None
    for n in nodes:
        label = f"{n.op_type} {n.name or n.output[0]!r}"
        if n.op_type != "LSTM":
            raise LstmEdgeError(f"--rebuild handles LSTM stacks; {label} is not one", "import without --rebuild")
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        direction = attrs.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        bad = [k for k in ("activations", "clip") if k in attrs] + (
            ["input_forget"] if attrs.get("input_forget") else []
        )
        if direction != "forward":
            bad.append(f"direction={direction}")
        if len(n.input) > 7 and n.input[7]:
            bad.append("peephole weights P (nn.LSTM has none)")
        if bad:
            raise LstmEdgeError(f"{label} has {', '.join(bad)}: not a plain LSTM", "import without --rebuild")
        h = int(attrs["hidden_size"])
        if H is not None and h != H:
            raise LstmEdgeError(f"{label} has hidden size {h}, an earlier layer {H}", "import without --rebuild")
        H = h
        arrays = []
        for slot, what in ((1, "W"), (2, "R"), (3, "B")):
            name = n.input[slot] if len(n.input) > slot else ""
            if slot == 3 and not name:
                arrays.append(np.zeros((1, 8 * H), np.float32))
                continue
            if name not in inits:
                raise LstmEdgeError(
                    f"{label}'s {what} is not a constant", "pass weights given as inputs with --weights FILE.npz"
                )
            arrays.append(inits[name])
        W, R, B = (a[0].astype(np.float64) for a in arrays)
        layers.append(
            {
                "w_ih": _from_onnx_gates(W, H),
                "w_hh": _from_onnx_gates(R, H),
                "b_ih": _from_onnx_gates(B[: 4 * H], H),
                "b_hh": _from_onnx_gates(B[4 * H :], H),
            }
        )
    return layers


def rebuild_bundle(
    model: onnx.ModelProto,
    path: Path,
    target: Path,
    cfg: ImportConfig,
    findings: list[Finding],
    notes: list[str],
    start: float,
) -> ImportResult:
    """The ImportResult of a clean re-export (see module docstring). Raises LstmEdgeError when the recurrence is not
    a plain LSTM stack or the rebuilt model differs from the original in float64."""
    if "unrolled" in {f.code for f in findings} or "loop-recurrence" in {f.code for f in findings}:
        raise LstmEdgeError(
            f"{path.name} has no fused LSTM nodes to rebuild from (unrolled or a loop)",
            "export the PyTorch model with lstm-edge export instead",
        )
    layers = _plain_stack(model)
    sig = Signature.from_model(model)
    if sig.port("x") is None:
        raise LstmEdgeError(f"no input of {path.name} plays the role of x", "name the sequence input x (or input/X)")
    model = drop_lengths(model, sig, notes)
    model = free_axes(model, Signature.from_model(model), notes)
    sig = Signature.from_model(model)
    extra = [p.describe() for p in sig.inputs if p.role is None]
    if extra:
        raise LstmEdgeError(
            f"{path.name} takes inputs that play no role: {', '.join(extra)}", "pass them with --weights"
        )
    contract = learn_contract(model, sig)
    if contract.directions != 1 or contract.output_size != contract.hidden_size:
        raise LstmEdgeError(
            f"{path.name}'s output is not the last LSTM layer's hidden state (width {contract.output_size})",
            "import without --rebuild",
        )
    F, H, L = contract.input_size, contract.hidden_size, len(layers)
    name = cfg.name or path.stem
    config = ModelConfig(
        input_size=F,
        hidden_size=H,
        num_layers=L,
        output_size=H,
        head="last" if contract.y_form == "last" else "sequence",
        task=name,
    )
    rebuilt = _rebuilt(config, layers)
    worst = _float64_gap(model, contract, rebuilt)
    if worst > MAPPING_F64:
        raise LstmEdgeError(
            f"the LSTM weights rebuilt as nn.LSTM differ from {path.name} by {worst:.1e} in float64: the graph holds "
            "more than a plain LSTM stack",
            "import without --rebuild",
        )
    result = export_bundle(rebuilt.float().eval(), target, ExportConfig(opset=cfg.opset, force=cfg.force, name=name))
    notes.append(f"rebuilt as nn.LSTM ({config.describe()}); equal to the original in float64 to {worst:.1e}")
    _record(target, path, worst, notes, findings)
    worst_ort = max(r["max_scaled_error"] for r in result.validation)
    return ImportResult(target, time.perf_counter() - start, True, True, findings, notes, worst_ort)


def _rebuilt(config: ModelConfig, layers: list[dict[str, np.ndarray]]) -> LSTMModel:
    """An LSTMModel in float64 holding `layers`' weights, its head the identity (y = the last layer's output)."""
    rebuilt = LSTMModel(config).double().eval()
    with torch.no_grad():
        names = {"w_ih": "weight_ih", "w_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh"}
        for k, w in enumerate(layers):
            for key, a in w.items():
                getattr(rebuilt.lstm, f"{names[key]}_l{k}").copy_(torch.from_numpy(a))
        rebuilt.head.weight.copy_(torch.eye(config.hidden_size, dtype=torch.float64))  # y = the recurrent output itself
        rebuilt.head.bias.zero_()
    return rebuilt


def _float64_gap(model: onnx.ModelProto, contract: Contract, rebuilt: LSTMModel) -> float:
    """The worst scaled error between the original (wrapped to x/h0/c0, exact) and the rebuild, both in float64,
    at B=2, T=5, zero state and (where the state is an input) random state."""
    F, H, L = contract.input_size, contract.hidden_size, rebuilt.config.num_layers
    original = evaluator(wrap(model, contract))
    rng = np.random.default_rng(3)
    worst = 0.0
    for random_state in (False, True) if contract.stateful else (False,):
        x = rng.standard_normal((2, 5, F))
        h0 = rng.uniform(-0.9, 0.9, (L, 2, H)) if random_state else np.zeros((L, 2, H))
        c0 = rng.standard_normal((L, 2, H)) if random_state else np.zeros((L, 2, H))
        feeds = {X: x} | ({H0: h0, C0: c0} if contract.stateful else {})
        want = original(feeds)
        with torch.no_grad():
            y, (h, c) = rebuilt(*(torch.from_numpy(a) for a in (x,)), (torch.from_numpy(h0), torch.from_numpy(c0)))
        got = {Y: y.numpy(), HN: h.numpy(), CN: c.numpy()}
        for k in want:
            worst = max(worst, float(scaled_error(got[k], want[k]).max()))
    return worst


def _record(target: Path, path: Path, worst: float, notes: list[str], findings: list[Finding]) -> None:
    """The exported bundle's manifest says what it was rebuilt from and how close the rebuild is."""
    with staged_dir(target, copy_existing=True) as stage:
        manifest = json.loads((stage / MANIFEST).read_text())
        manifest["reference"] = {
            "kind": "rebuilt-from-state-dict",
            "detail": f"LSTM weights of {path.name} mapped to nn.LSTM (identity head); equal to the original "
            f"evaluated in float64 by onnx.reference to {worst:.1e}",
        }
        manifest["streaming"] = True
        manifest["import"] = {
            "source": path.name,
            "notes": notes,
            "findings": [f.to_dict() for f in findings],
        }
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
