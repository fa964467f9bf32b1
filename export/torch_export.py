"""The torch.onnx (dynamo) path, for custom modules the weight-level builder cannot read.

Known traps handled here: batch or seq of 1 in the example freezes that axis; GateLSTM's Python loop would be
unrolled over time (it is swapped for the equivalent nn.LSTM first); the weights' gate reordering stays as
Slice/Concat unless constants are folded; dynamo writes external data unless told not to; value_info goes stale.
"""

from __future__ import annotations

import copy

import onnx
import torch
from torch import nn

from lstm_edge.config import INPUT_NAMES, OUTPUT_NAMES
from lstm_edge.errors import LstmEdgeError
from lstm_edge.model import GateLSTM


def _swap_gate_lstms(module: nn.Module) -> nn.Module:
    module = copy.deepcopy(module)
    for name, child in list(module.named_children()):
        if isinstance(child, GateLSTM):
            setattr(module, name, child.to_torch())
        else:
            setattr(module, name, _swap_gate_lstms(child))
    return module


def dynamo_export(module: nn.Module, example_input: torch.Tensor, opset: int) -> tuple[onnx.ModelProto, dict]:
    if example_input.ndim != 3:
        raise LstmEdgeError(f"example input has shape {tuple(example_input.shape)}", "give x as [B, T, F]")
    B, T, F = example_input.shape
    if B < 2 or T < 2:
        raise LstmEdgeError(
            f"example input has batch {B} and seq {T}: an axis traced at 1 is frozen by the exporter",
            "trace with B ≥ 2 and T ≥ 2",
        )
    module = _swap_gate_lstms(module).eval()
    lstm = next((m for m in module.modules() if isinstance(m, nn.LSTM)), None)
    if lstm is None:
        raise LstmEdgeError("the module has no nn.LSTM or GateLSTM", "lstm-edge exports recurrent models only")
    L, H = lstm.num_layers, lstm.hidden_size
    h0 = torch.zeros(L, B, H)
    batch, seq = torch.export.Dim("batch", min=1, max=1 << 16), torch.export.Dim("seq", min=1, max=1 << 20)
    program = torch.onnx.export(
        module,
        (example_input.float(), (h0, h0.clone())),
        dynamo=True,
        external_data=False,
        opset_version=opset,
        input_names=list(INPUT_NAMES),
        output_names=list(OUTPUT_NAMES),
        dynamic_shapes=({0: batch, 1: seq}, ({1: batch}, {1: batch})),
        optimize=True,
        verbose=False,
    )
    proto = program.model_proto
    import onnxscript.optimizer

    # Constant folding takes the gate shuffles off the weights; the default size limits (8K elements) would
    # leave any real LSTM's weights unfolded.
    proto = onnxscript.optimizer.optimize(proto, input_size_limit=1 << 30, output_size_limit=1 << 30)
    del proto.graph.value_info[:]
    _unfreeze_outputs(proto)
    dims = {"input_size": F, "num_layers": L, "hidden_size": H}
    return proto, dims


def _unfreeze_outputs(proto: onnx.ModelProto) -> None:
    """Output dims that only the trace fixed become symbolic again, named like x's axis at that position.

    The dynamo exporter declares a head run at every step as y ['batch', T_example, O] although x's seq axis is
    dynamic (measured: y ['batch', 6, 2] from an example of T=6; ORT then warns on every other T and a streaming
    chunk of 1 step breaks runtimes that trust the declaration). Shape inference on the graph without the declared
    output shapes says which dims the graph really fixes."""
    probe = copy.deepcopy(proto)
    for o in probe.graph.output:
        o.type.tensor_type.ClearField("shape")
    inferred = {o.name: o.type.tensor_type.shape.dim for o in onnx.shape_inference.infer_shapes(probe).graph.output}
    x_dims = proto.graph.input[0].type.tensor_type.shape.dim
    for o in proto.graph.output:
        for k, d in enumerate(o.type.tensor_type.shape.dim):
            free = o.name in inferred and k < len(inferred[o.name]) and not inferred[o.name][k].HasField("dim_value")
            if d.HasField("dim_value") and free:
                d.dim_param = x_dims[k].dim_param if k < len(x_dims) and x_dims[k].dim_param else f"{o.name}_dim{k}"
