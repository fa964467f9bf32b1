"""What an export is asked for (ExportConfig) and what it has validated before writing (Plan), with the plan for
lstm-edge's own LSTMModel: shared by exporter.py (which writes plans) and user_model.py (which makes them for
users' models)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

import numpy as np
import onnx

from lstm_edge.errors import LstmEdgeError
from lstm_edge.export.golden import make_golden
from lstm_edge.export.graph import GATE_LAYOUT, build_onnx, gate_layout
from lstm_edge.export.lint import Finding, lint
from lstm_edge.export.validate import validate
from lstm_edge.model import LSTMModel, ModelConfig, forward_numpy

SUPPORTED_OPSETS = range(14, 23)
HEAD_CHOICES = ("last", "final", "sequence")  # what a Linear head reads: the modes export can find by trying
HEAD_FLAGS = (*HEAD_CHOICES, "none")  # what --head accepts: none leaves a Linear the weights hold out


@dataclass
class ExportConfig:
    """Everything `export` can be asked for (CLI options and Python API alike).

    head: what a recognized Linear head reads — "last" (fc(out[:, -1]), the default), "final" (final hidden states)
    or "sequence" (every step), or "none" (a Linear in the weights is not applied); None: where the user's forward is
    available, the mode that reproduces it; from weights alone, a refusal where the modes give different outputs.
    trust_pickle: accept files whose loading or forward runs code from the file (pickled modules, TorchScript,
    torch.export .pt2); without it a TorchScript file is read as weights only. code: a .py file defining the user's
    classes, imported first (needs trust_pickle); with a state_dict, its class gives the forward.
    """

    opset: int = 17
    force: bool = False
    name: str | None = None
    trust_pickle: bool = False
    head: str | None = None
    code: str | None = None


@dataclass
class Plan:
    """A validated export, ready to write. model: saved as model.pt (None for a stateless export of a user's forward,
    which has no checkpoint); ckpt_bytes: an lstm-edge checkpoint copied as it is."""

    config: ModelConfig
    proto: onnx.ModelProto
    rows: list[dict]
    golden: dict[str, np.ndarray]
    findings: list[Finding]
    model: LSTMModel | None
    ckpt_bytes: bytes | None = None
    reference: dict = field(default_factory=lambda: {"kind": "lstm-edge-checkpoint", "detail": ""})
    streaming: bool = True
    recognized: str = ""
    io: dict | None = None  # the manifest's I/O spec where it is not the config's (stateless graphs)
    gate_layout: str = GATE_LAYOUT


def check_opset(opset: int) -> None:
    """Raises LstmEdgeError (with the supported range) for an opset outside SUPPORTED_OPSETS."""
    if opset not in SUPPORTED_OPSETS:
        raise LstmEdgeError(f"opset {opset} is not supported", f"choose {SUPPORTED_OPSETS[0]}–{SUPPORTED_OPSETS[-1]}")


def float64_reference(model: LSTMModel):
    """The rebuild in float64 on numpy inputs (config.input_names order → config.output_names order): export
    judges the float32 graph against exact arithmetic, so a wrong mapping cannot hide in float32 noise."""
    twin = copy.deepcopy(model).double().eval()

    def reference(*inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        return forward_numpy(twin, *(a.astype(np.float64) if a.dtype.kind == "f" else a for a in inputs))

    return reference


def plan_own_model(model: LSTMModel, cfg: ExportConfig, source_sha: str) -> Plan:
    """The weight-level builder on an LSTMModel, linted and validated against it at unseen shapes.

    Raises LstmEdgeError when the built graph fails lint, ParityError when it differs from the model."""
    config = model.config
    proto = build_onnx(
        model,
        opset=cfg.opset,
        metadata={"source_checkpoint_sha256": source_sha, "normalization": _json_norm(config)},
    )
    findings = lint(proto)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise LstmEdgeError(f"the exported graph fails lint: {errors[0].message}", errors[0].fix)
    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)

    reference = float64_reference(model)
    rows = validate(proto, reference, config)
    golden = make_golden(reference, config)
    return Plan(config, proto, rows, golden, findings, model, gate_layout=gate_layout(config))


def _json_norm(config: ModelConfig) -> str:
    return json.dumps({k: getattr(config, k) for k in ("x_mean", "x_std", "y_mean", "y_std")})
