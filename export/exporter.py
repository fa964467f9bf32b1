"""torch → ONNX → a validated, linted bundle on disk (model.onnx, model.pt, golden.npz, manifest.json)."""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from lstm_edge.atomic import sha256_file, staged_dir
from lstm_edge.checkpoint import check_finite_weights, load_checkpoint, save_checkpoint
from lstm_edge.data import TASKS
from lstm_edge.errors import LstmEdgeError
from lstm_edge.export.golden import make_golden
from lstm_edge.export.graph import GATE_LAYOUT, build_onnx
from lstm_edge.export.lint import Finding, lint
from lstm_edge.export.manifest import artifact_entry, new_manifest, write_manifest
from lstm_edge.export.validate import validate
from lstm_edge.model import GateLSTM, LSTMModel, ModelConfig, run_numpy

SUPPORTED_OPSETS = range(14, 23)


@dataclass
class ExportConfig:
    opset: int = 17
    force: bool = False
    name: str | None = None
    trust_pickle: bool = False


@dataclass
class ExportResult:
    bundle: Path
    seconds: float
    nodes: dict[str, int]
    validation: list[dict]
    findings: list[Finding] = field(default_factory=list)


def _check_opset(opset: int) -> None:
    if opset not in SUPPORTED_OPSETS:
        raise LstmEdgeError(f"opset {opset} is not supported", f"choose {SUPPORTED_OPSETS[0]}–{SUPPORTED_OPSETS[-1]}")


def _dims(config: ModelConfig) -> dict:
    return {
        "input_size": config.input_size,
        "num_layers": config.num_layers,
        "hidden_size": config.hidden_size,
        "x_mean": config.x_mean,
        "x_std": config.x_std,
    }


def _as_model(module: nn.Module) -> tuple[LSTMModel, bool]:
    """An LSTMModel for the graph builder; with_head False for a bare nn.LSTM/GateLSTM."""
    if isinstance(module, LSTMModel):
        return module, True
    lstm = module if isinstance(module, nn.LSTM) else module.to_torch()  # GateLSTM
    if not lstm.batch_first or lstm.bidirectional or lstm.proj_size:
        raise LstmEdgeError(
            "only batch_first, unidirectional nn.LSTM without projection is supported",
            "construct it with batch_first=True",
        )
    config = ModelConfig(
        lstm.input_size, lstm.hidden_size, lstm.num_layers, output_size=lstm.hidden_size, head="sequence"
    )
    model = LSTMModel(config)
    model.lstm = lstm.float()
    return model.eval(), False


def export_onnx(
    module: nn.Module,
    example_input: torch.Tensor | None = None,
    path: str | Path | None = None,
    opset: int = 17,
) -> onnx.ModelProto:
    """Any nn.Module whose recurrent part is nn.LSTM or GateLSTM → a validated ONNX model (written to `path` if given).

    LSTMModel, nn.LSTM and GateLSTM go through the weight-level builder. Any other module must follow the
    lstm-edge contract forward(x, (h0, c0)) -> (y, (hn, cn)); it goes through torch.onnx (dynamo) with constant
    folding, then the same lint and validation.
    """
    _check_opset(opset)
    module = module.eval()
    if isinstance(module, (LSTMModel, nn.LSTM, GateLSTM)):
        model, with_head = _as_model(module)
        proto = build_onnx(model, opset=opset, with_head=with_head)
        dims = _dims(model.config)
    else:
        from lstm_edge.export.torch_export import dynamo_export

        if example_input is None:
            raise LstmEdgeError("a custom module needs an example input", "pass example_input=torch.randn(B, T, F)")
        proto, dims = dynamo_export(module, example_input, opset)
    errors = [f for f in lint(proto) if f.severity == "error"]
    if errors:
        raise LstmEdgeError(f"the exported graph fails lint: {errors[0].message}", errors[0].fix)
    onnx.checker.check_model(proto, full_check=True)
    validate(proto, lambda x, h, c: run_numpy(module, x, h, c), dims)
    if path is not None:
        from lstm_edge.atomic import atomic_write_bytes

        atomic_write_bytes(Path(path), proto.SerializeToString())
    return proto


def export_bundle(
    source: str | Path | LSTMModel, out: str | Path | None = None, cfg: ExportConfig | None = None
) -> ExportResult:
    """Export a checkpoint (path) or an LSTMModel into a bundle folder; nothing is written unless it validates."""
    cfg = cfg or ExportConfig()
    _check_opset(cfg.opset)
    start = time.perf_counter()
    if isinstance(source, LSTMModel):
        check_finite_weights(source.state_dict(), "the model")
        model, ckpt_bytes = source.eval(), None
        name = cfg.name or source.config.task
    else:
        model, config = load_checkpoint(source, trust_pickle=cfg.trust_pickle)
        # A pickled module is re-saved as a weights-only checkpoint rather than copied.
        ckpt_bytes = Path(source).read_bytes() if not cfg.trust_pickle else None
        name = cfg.name or (config.task if config.task in TASKS else Path(source).stem)
    target = Path(out) if out is not None else Path("models") / name
    if target.exists() and not cfg.force:
        raise LstmEdgeError(f"{target} already exists", "pass --force to overwrite it, or --out another folder")
    if target.exists() and not target.is_dir():
        raise LstmEdgeError(f"{target} exists and is not a folder", "choose another --out")

    config = model.config
    source_sha = sha256_file(source) if ckpt_bytes is not None else ""
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

    def reference(x: np.ndarray, h0: np.ndarray, c0: np.ndarray):
        return run_numpy(model, x, h0, c0)

    rows = validate(proto, reference, _dims(config))
    golden = make_golden(reference, _dims(config))

    with staged_dir(target) as stage:
        (stage / "model.onnx").write_bytes(proto.SerializeToString())
        if ckpt_bytes is not None:
            (stage / "model.pt").write_bytes(ckpt_bytes)
        else:
            save_checkpoint(model, stage / "model.pt")
            source_sha = sha256_file(stage / "model.pt")
        buf = io.BytesIO()
        np.savez(buf, **golden)
        (stage / "golden.npz").write_bytes(buf.getvalue())
        manifest = new_manifest(name, config, source_sha, GATE_LAYOUT)
        manifest["artifacts"] = {
            "fp32": artifact_entry(stage, "model.onnx", "fp32", cfg.opset, deployable=True),
            "checkpoint": artifact_entry(stage, "model.pt", "fp32"),
            "golden": artifact_entry(stage, "golden.npz", "fp32"),
        }
        manifest["validation"] = {
            "runtime": "onnxruntime-cpu",
            "max_scaled_error": max(r["max_scaled_error"] for r in rows),
            "cases": len(rows) // 3,
        }
        write_manifest(stage, manifest)
    nodes: dict[str, int] = {}
    for n in proto.graph.node:
        nodes[n.op_type] = nodes.get(n.op_type, 0) + 1
    return ExportResult(target, time.perf_counter() - start, nodes, rows, findings)


def _json_norm(config: ModelConfig) -> str:
    return json.dumps({k: getattr(config, k) for k in ("x_mean", "x_std", "y_mean", "y_std")})


__all__ = ["ExportConfig", "ExportResult", "export_bundle", "export_onnx"]
