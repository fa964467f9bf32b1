"""torch → ONNX → a validated, linted bundle on disk (model.onnx, model.pt, golden.npz, manifest.json)."""

from __future__ import annotations

import dataclasses
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from lstm_edge.atomic import atomic_write_bytes, out_folder, sha256_file, staged_dir
from lstm_edge.bundle import check_name
from lstm_edge.checkpoint import check_finite_weights, load_checkpoint, save_checkpoint
from lstm_edge.data import TASKS
from lstm_edge.errors import LstmEdgeError
from lstm_edge.export.graph import build_onnx
from lstm_edge.export.lint import Finding, lint
from lstm_edge.export.manifest import artifact_entry, new_manifest, write_manifest
from lstm_edge.export.onnx_stamp import stamp
from lstm_edge.export.plan import (
    HEAD_FLAGS,
    ExportConfig,
    Plan,
    check_opset,
    float64_reference,
    plan_own_model,
)
from lstm_edge.export.torch_export import CONTRACT, dynamo_export
from lstm_edge.export.user_model import plan_file, plan_module
from lstm_edge.export.validate import validate
from lstm_edge.intake import read_model
from lstm_edge.model import GateLSTM, LSTMModel, ModelConfig, run_numpy

BUILDER = "lstm-edge graph builder (export/graph.py, from the weights)"


@dataclass
class ExportResult:
    """What export_bundle wrote: the bundle folder, seconds taken, op counts of model.onnx, the validation rows,
    lint findings (warnings only: errors stop the export), what the intake recognized, the reference it was judged
    against, and whether it streams."""

    bundle: Path
    seconds: float
    nodes: dict[str, int]
    validation: list[dict]
    findings: list[Finding] = field(default_factory=list)
    recognized: str = ""  # what the intake recognized, one short block ("" for lstm-edge's own checkpoints)
    reference: dict = field(default_factory=dict)  # the manifest's {"kind", "detail"}
    streaming: bool = True


def builder_takes(module: nn.Module) -> bool:
    """Whether the weight-level builder reads this module's recurrent part directly: nn.LSTM and nn.GRU in any
    direction, layout, bias and projection (export/graph.py builds each form from the weights)."""
    return isinstance(module, (nn.LSTM, nn.GRU))


def _as_model(module: nn.Module) -> tuple[LSTMModel, bool]:
    """An LSTMModel for the graph builder; with_head False for a bare nn.LSTM/nn.GRU/GateLSTM (head "none")."""
    if isinstance(module, LSTMModel):
        return module, True
    rnn = module if isinstance(module, (nn.LSTM, nn.GRU)) else module.to_torch()  # GateLSTM
    config = ModelConfig(
        rnn.input_size,
        rnn.hidden_size,
        rnn.num_layers,
        head="none",
        family="lstm" if isinstance(rnn, nn.LSTM) else "gru",
        bidirectional=rnn.bidirectional,
        proj_size=getattr(rnn, "proj_size", 0),
        bias=rnn.bias,
        batch_first=rnn.batch_first,
        output_size=(2 if rnn.bidirectional else 1) * (getattr(rnn, "proj_size", 0) or rnn.hidden_size),
    )
    model = LSTMModel(config)
    model.lstm = rnn.float()
    return model.eval(), False


def export_onnx(
    module: nn.Module,
    example_input: torch.Tensor | None = None,
    path: str | Path | None = None,
    opset: int = 17,
) -> onnx.ModelProto:
    """A module following the stateful contract → a validated ONNX model (written to `path` if given).

    LSTMModel (every ModelConfig form), nn.LSTM, nn.GRU (any direction, layout, bias, projection) and GateLSTM go
    through the weight-level builder and are validated against the module in float64. Any other module must follow the
    lstm-edge contract forward(x, (h0, c0)) -> (y, (hn, cn)); it goes through torch.onnx (dynamo) with constant
    folding, then the same lint and validation at unseen shapes. Raises LstmEdgeError saying the contract for a
    module that does not follow it (for a forward(x) -> y, use export_bundle), ParityError if the graph differs from
    the module beyond the float32 tolerance.
    """
    check_opset(opset)
    module = module.eval()
    if isinstance(module, (LSTMModel, GateLSTM)) or builder_takes(module):
        model, with_head = _as_model(module)
        proto = build_onnx(model, opset=opset, with_head=with_head)
        dims, reference = model.config, float64_reference(model)
    else:
        if isinstance(module, nn.RNNBase) and not isinstance(module, nn.LSTM):
            raise LstmEdgeError(
                f"{CONTRACT}; an {type(module).__name__} has no cell state",
                "export it with lstm_edge.export.export_bundle(module, OUT, example_input=x)",
            )
        if example_input is None and isinstance(module, nn.LSTM):
            example_input = torch.randn(2, 5, module.input_size)  # B, T ≥ 2: an axis traced at 1 freezes
        if example_input is None:
            raise LstmEdgeError("a custom module needs an example input", "pass example_input=torch.randn(B, T, F)")
        proto, dims = dynamo_export(module, example_input, opset)

        def reference(x, h, c):
            return run_numpy(module, x, h, c)

    errors = [f for f in lint(proto) if f.severity == "error"]
    if errors:
        raise LstmEdgeError(f"the exported graph fails lint: {errors[0].message}", errors[0].fix)
    onnx.checker.check_model(proto, full_check=True)
    validate(proto, reference, dims)
    if path is not None:
        atomic_write_bytes(Path(path), proto.SerializeToString())
    return proto


def export_bundle(
    source: str | Path | nn.Module,
    out: str | Path | None = None,
    cfg: ExportConfig | None = None,
    example_input: torch.Tensor | None = None,
    head: str | None = None,
) -> ExportResult:
    """Export a model file or an nn.Module into a bundle folder; nothing is written unless it validates.

    source: an lstm-edge checkpoint (.pt); a user's state_dict (bare or inside a checkpoint dict), .safetensors,
    pickled module (cfg.trust_pickle), TorchScript archive or torch.export .pt2 (cfg.trust_pickle) — read by
    lstm_edge.intake; or an nn.Module (an LSTMModel, or any module whose forward(x) returns y or (y, …)).
    A user's model is recognized from its weights (lstm_edge.intake.recognize) and built as fused LSTM nodes; where
    its forward is available it is the reference, checked at B ∈ {1, 3}, T ∈ {1, 17, 300}, and where the recognized
    structure does not reproduce it, the forward itself is exported through torch.onnx (stateless: streaming false).
    example_input: x [B, T, F] (or token ids [B, T]) for that fallback, B and T ≥ 2; made up when None.
    head: shorthand for cfg.head. Raises LstmEdgeError (bad input, one line) or ParityError (a graph that differs).
    """
    cfg = dataclasses.replace(cfg or ExportConfig(), **({"head": head} if head is not None else {}))
    check_opset(cfg.opset)
    if cfg.head is not None and cfg.head not in HEAD_FLAGS:
        raise LstmEdgeError(f"head {cfg.head!r}", f"choose {', '.join(HEAD_FLAGS)}")
    start = time.perf_counter()
    if isinstance(source, LSTMModel):
        check_finite_weights(source.state_dict(), "the model")
        plan = plan_own_model(source.eval(), cfg, "")
        name = cfg.name if cfg.name is not None else source.config.task
    elif isinstance(source, nn.Module):
        check_finite_weights(source.state_dict(), "the model")
        plan = plan_module(source, cfg, example_input)
        name = cfg.name if cfg.name is not None else type(source).__name__.lower()
    else:
        mf = read_model(source, trust_pickle=cfg.trust_pickle, code=cfg.code)
        if mf.checkpoint is None:  # NaN/Inf weights are the file's problem, named here, not a parity failure later
            check_finite_weights(mf.state_dict, str(source))
        if mf.checkpoint is not None:  # lstm-edge's own checkpoint: exactly as before the intake
            model, config = load_checkpoint(source)
            plan = plan_own_model(model, cfg, sha256_file(source))
            plan.ckpt_bytes = Path(source).read_bytes()
            name = cfg.name if cfg.name is not None else (config.task if config.task in TASKS else Path(source).stem)
        elif isinstance(mf.module, LSTMModel):  # a pickled LSTMModel is re-saved as a weights-only checkpoint
            plan = plan_own_model(mf.module.eval(), cfg, "")
            name = cfg.name if cfg.name is not None else Path(source).stem
        else:
            plan = plan_file(mf, cfg, example_input)
            name = cfg.name if cfg.name is not None else Path(source).stem
    plan.reference = {"exporter": BUILDER, **plan.reference}  # the fallback names its torch.onnx exporter
    check_name(name, derived=cfg.name is None and not isinstance(source, nn.Module))
    shown = Path(out) if out is not None else Path("models") / name
    inputs = [] if isinstance(source, nn.Module) else [source]
    target = out_folder(shown, inputs=inputs, force=cfg.force)  # refuses what is not ours, before any write
    _write(plan, target, name, cfg)
    nodes: dict[str, int] = {}
    for n in plan.proto.graph.node:
        nodes[n.op_type] = nodes.get(n.op_type, 0) + 1
    return ExportResult(
        shown,
        time.perf_counter() - start,
        nodes,
        plan.rows,
        plan.findings,
        plan.recognized,
        plan.reference,
        plan.streaming,
    )


def _write(plan: Plan, target: Path, name: str, cfg: ExportConfig) -> None:
    with staged_dir(target, replace=cfg.force) as stage:
        (stage / "model.onnx").write_bytes(stamp(plan.proto, name, "fp32").SerializeToString())
        source_sha = ""
        if plan.ckpt_bytes is not None:
            (stage / "model.pt").write_bytes(plan.ckpt_bytes)
            source_sha = sha256_file(stage / "model.pt")
        elif plan.model is not None:
            save_checkpoint(plan.model, stage / "model.pt")
            source_sha = sha256_file(stage / "model.pt")
        buf = io.BytesIO()
        np.savez(buf, **plan.golden)
        (stage / "golden.npz").write_bytes(buf.getvalue())
        manifest = new_manifest(name, plan.config, source_sha, plan.gate_layout)
        if plan.io is not None:
            manifest["io"] = plan.io
        manifest["reference"] = plan.reference
        manifest["streaming"] = plan.streaming and plan.config.streamable  # stateless, or bidirectional: no
        manifest["artifacts"] = {"fp32": artifact_entry(stage, "model.onnx", "fp32", cfg.opset, deployable=True)}
        if plan.model is not None or plan.ckpt_bytes is not None:
            manifest["artifacts"]["checkpoint"] = artifact_entry(stage, "model.pt", "fp32")
        manifest["artifacts"]["golden"] = artifact_entry(stage, "golden.npz", "fp32")
        manifest["validation"] = {
            "runtime": "onnxruntime-cpu",
            "max_scaled_error": max(r["max_scaled_error"] for r in plan.rows),
            "cases": len({(r["batch"], r["seq"], r["state"], r.get("against", "")) for r in plan.rows}),
        }
        write_manifest(stage, manifest)


__all__ = ["ExportConfig", "ExportResult", "builder_takes", "export_bundle", "export_onnx"]
