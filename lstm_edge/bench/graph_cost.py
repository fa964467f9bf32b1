"""The model's size and arithmetic read from its ONNX graph, for a bundle whose config does not describe the whole
computation (a whole-graph export of the user's forward: LayerNorm, a conv front-end, an autoencoder) or whose
config-based count leaves out a direction (bidirectional).

Counted per sequence and time step from the initializers' shapes: MatMul/Gemm with a weight initializer (K·N MACs),
LSTM/GRU/RNN (directions × gates·H × (I + H) MACs, plus the gate math), 1-D Conv (C_out · C_in/groups · kernel MACs
per output step, over its stride). Every such node is counted once per time step, so a node the graph applies once
per sequence (a head on the last step only) is counted T times: the figure is an upper bound, and the report says
so. Elementwise and normalization nodes are not counted. A node whose cost depends on shapes the initializers do
not fix (a MatMul of two activations, a 2-D Conv, an op not listed) makes the count unknown (None), named.
"""

from __future__ import annotations

import math

import onnx

# FLOPs of gate math per hidden unit and direction, as bench.timing.flops_per_step counts them (~10 for an LSTM).
GATE_FLOPS = {"LSTM": 10, "GRU": 8, "RNN": 1}
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
# Nodes that do arithmetic on weights, or on two activations, whose cost bench cannot read from initializers.
UNCOUNTABLE = {"ConvTranspose", "Einsum", "Attention", "MultiHeadAttention", "Scan", "Loop", "If"}
BASIS = (
    "counted from the ONNX graph's initializer shapes: MatMul/Gemm, LSTM/GRU/RNN and 1-D Conv, each once per time "
    "step — an upper bound where a node runs once per sequence (a last-step head); elementwise and normalization "
    "nodes not counted"
)


def graph_cost(model: onnx.ModelProto) -> dict:
    """FLOPs per sequence and time step, and the parameter count, of an fp32 ONNX graph.

    Args:
        model: the loaded graph (weights inline; the bundle's fp32 model.onnx).
    Returns:
        {"flops_per_step": int, or None where a node's cost is not fixed by the initializers, "weights": the
        elements of every float initializer of rank ≥ 1 (parameters; rank-0 float constants are left out),
        "basis": how it was counted, and "uncounted": the nodes (name (op)) that made flops_per_step unknown}.
    Raises nothing: an op it does not know and that carries no weight is simply not counted (elementwise).
    """
    inits = {i.name: list(i.dims) for i in model.graph.initializer}
    macs, extra, uncounted = 0, 0, []
    for node in model.graph.node:
        cost = node_macs(node, inits)
        if cost is None:
            uncounted.append(f"{node.name or node.output[0]} ({node.op_type})")
            continue
        macs += cost[0]
        extra += cost[1]
    weights = sum(math.prod(i.dims) for i in model.graph.initializer if i.data_type in FLOAT_TYPES and len(i.dims) >= 1)
    return {
        "flops_per_step": None if uncounted else 2 * macs + extra,
        "weights": int(weights),
        "basis": BASIS,
        "uncounted": uncounted,
    }


def node_macs(node: onnx.NodeProto, inits: dict[str, list[int]]) -> tuple[int, int] | None:
    """(MACs, other FLOPs) per sequence and time step of one node; (0, 0) for a node that carries no weight
    (elementwise, shape, normalization); None where its cost is not fixed by the initializers' shapes."""
    op, ins = node.op_type, list(node.input)
    if op in ("MatMul", "Gemm"):
        w = next((inits[n] for n in ins[:2] if n in inits), None)
        if w is None or len(w) < 2:  # two activations (attention scores): the cost grows with T
            return None
        return math.prod(w[-2:]), 0
    if op in GATES:
        w, r = inits.get(ins[1]), inits.get(ins[2])
        if w is None or r is None or len(w) != 3 or len(r) != 3:
            return None
        directions, gates_h, f_in = w
        h = gates_h // GATES[op]
        return directions * gates_h * (f_in + r[2]), directions * GATE_FLOPS[op] * h
    if op == "Conv":
        w = inits.get(ins[1])
        if w is None or len(w) != 3:  # a 2-D (or deeper) conv: output positions per step are not known
            return None
        stride = next((a.ints[0] for a in node.attribute if a.name == "strides" and a.ints), 1)
        return math.ceil(w[0] * w[1] * w[2] / stride), 0
    if op in UNCOUNTABLE or op.endswith("Integer") or op.startswith("Dynamic"):
        return None
    return 0, 0
