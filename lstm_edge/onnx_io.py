"""Reading an ONNX file's declared inputs and outputs safely (for bare models; runtimes and lint use it)."""

from __future__ import annotations

from pathlib import Path

from lstm_edge.errors import LstmEdgeError

MAX_ONNX_BYTES = 2 * 1024**3  # protobuf's own limit; larger files need external data


def load_onnx_checked(path: str | Path):
    """Parse an .onnx, refusing empty, oversized, malformed files and external data outside the model's folder."""
    import onnx

    path = Path(path)
    if not path.exists():
        raise LstmEdgeError(f"ONNX file not found: {path}", "check the path")
    if path.is_dir():
        raise LstmEdgeError(f"{path} is a directory, not an ONNX file", "pass the .onnx file (or the bundle to run)")
    size = path.stat().st_size
    if size == 0:
        raise LstmEdgeError(f"{path} is empty", "re-export the model")
    if size >= MAX_ONNX_BYTES:
        raise LstmEdgeError(f"{path} is {size} bytes, over protobuf's 2 GB limit", "save weights as external data")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends
        raise LstmEdgeError(f"{path} is not a readable ONNX model ({type(e).__name__})", "re-export the model") from e
    if not model.graph.node:
        raise LstmEdgeError(f"{path} holds no graph", "re-export the model")
    root = path.parent.resolve()
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            loc = next((e.value for e in t.external_data if e.key == "location"), "")
            target = (root / loc).resolve()
            if Path(loc).is_absolute() or root not in target.parents:
                raise LstmEdgeError(
                    f"{path}: tensor {t.name!r} points to external data outside the model's folder ({loc!r})",
                    "refusing to read it; keep external data files beside the model",
                )
    return model


def read_onnx_io(path: str | Path) -> tuple[list[tuple[str, list]], list[tuple[str, list]]]:
    """([(name, dims)], [(name, dims)]) of the graph inputs (initializers excluded) and outputs."""
    model = load_onnx_checked(path)
    inits = {t.name for t in model.graph.initializer}

    def dims(vi) -> list:
        return [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in vi.type.tensor_type.shape.dim
        ]

    ins = [(i.name, dims(i)) for i in model.graph.input if i.name not in inits]
    outs = [(o.name, dims(o)) for o in model.graph.output]
    if not ins:
        raise LstmEdgeError(f"{path} declares no inputs", "re-export the model")
    return ins, outs
