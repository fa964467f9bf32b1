"""`lstm-edge bundle --target triton`: a model repository for Triton Inference Server's ONNX Runtime backend, with
the sequence batcher keeping each stream's h and c inside Triton (implicit state), as our `stream()` does.

    REPO/<name>/config.pbtxt      sequence batcher (oldest strategy = dynamic batching of sequences), START/READY/END
                                  controls, implicit state for h and c, instance group
    REPO/<name>/1/model.onnx      the bundle's variant, wrapped for Triton (below)
    REPO/README.md                the `docker run` line and a client sketch

Why the embedded ONNX is wrapped, not copied (Triton's docs, "Implicit State Management" and "Sequence Batcher"):
- With max_batch_size > 0 Triton puts the batch first on every tensor, state included; our state is
  [layers, batch, hidden]. The wrapper takes and returns state as [batch, layers, hidden] (two Transposes each way).
- Triton hands the first request of a sequence uninitialized state memory. The wrapper reads the START control and
  uses zeros there (Where, not a multiply: garbage may be NaN); `initial_state { zero_data }` says the same to Triton.
- The controls are model inputs, so the wrapper declares START, READY and END ([batch, 1] int32). A slot that is not
  READY keeps its state; END needs nothing (Triton drops the sequence's state itself).
- State inputs/outputs get their own names (h_state/h_state_out, c_state/c_state_out): Triton feeds one request's
  output state back as the next request's input state by these names.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from lstm_edge.bundle import check_name
from lstm_edge.errors import LstmEdgeError
from lstm_edge.formats import TRITON_FORMAT, TRITON_INFO
from lstm_edge.forms import NOT_STREAMING, refusals
from lstm_edge.targets.common import TargetJob

STATE = (("h_state", "h_state_out"), ("c_state", "c_state_out"))
CONTROLS = (("START", "CONTROL_SEQUENCE_START"), ("READY", "CONTROL_SEQUENCE_READY"), ("END", "CONTROL_SEQUENCE_END"))
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:25.10-py3"  # any release with the onnxruntime backend
MAX_SEQUENCE_IDLE_US = 60_000_000  # a stream silent for a minute is dropped and its state freed
MAX_QUEUE_DELAY_US = 1_000  # wait up to 1 ms to fill a batch: at a 100 Hz step rate, a tenth of a step


def wrap_for_triton(model, io: dict):
    """The bundle's ONNX graph with Triton's state layout and controls (see the module docstring).

    model: onnx.ModelProto of the variant; io: the manifest's {"inputs": [...], "outputs": [...]} (x, h0, c0 → y, hn,
    cn). Returns a new ModelProto: inputs x [B, T, F], START/READY/END [B, 1] int32, h_state/c_state [B, L, H];
    outputs y, h_state_out/c_state_out [B, L, H]. Raises LstmEdgeError if the graph has no state inputs/outputs.
    """
    import onnx  # deferred: onnx takes ~0.25 s to import, kept off the CLI's start (it imports lstm_edge.targets)
    from onnx import TensorProto, helper

    names_in = [i["name"] for i in io["inputs"]]
    names_out = [o["name"] for o in io["outputs"]]
    if len(names_in) < 3 or len(names_out) < 3:
        raise LstmEdgeError("the model has no state inputs/outputs, so Triton cannot carry it", "re-export it")
    x, h0, c0 = names_in[:3]
    y, hn, cn = names_out[:3]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    state_shape = {i.name: i.type.tensor_type.shape for i in g.input}
    L, H = (state_shape[h0].dim[0].dim_value, state_shape[h0].dim[2].dim_value)
    batch = state_shape[x].dim[0].dim_param or "batch"
    keep_in = [i for i in g.input if i.name not in (h0, c0)]
    keep_out = [o for o in g.output if o.name not in (hn, cn)]
    del g.input[:]
    del g.output[:]
    g.input.extend(keep_in)
    g.output.extend(keep_out)
    for name, _ in CONTROLS:
        g.input.append(helper.make_tensor_value_info(name, TensorProto.INT32, [batch, 1]))
    for (s_in, s_out), _ in zip(STATE, (h0, c0), strict=True):
        g.input.append(helper.make_tensor_value_info(s_in, TensorProto.FLOAT, [batch, L, H]))
        g.output.append(helper.make_tensor_value_info(s_out, TensorProto.FLOAT, [batch, L, H]))
    pre = [
        helper.make_node("Constant", [], ["triton_zero"], value=helper.make_tensor("z", TensorProto.FLOAT, [], [0.0])),
        helper.make_node("Constant", [], ["triton_axis2"], value=helper.make_tensor("a", TensorProto.INT64, [1], [2])),
    ]
    for flag in ("START", "READY"):
        pre += [
            helper.make_node("Cast", [flag], [f"triton_{flag}_b"], to=TensorProto.BOOL),  # [B, 1]
            helper.make_node("Unsqueeze", [f"triton_{flag}_b", "triton_axis2"], [f"triton_{flag}_3"]),  # [B, 1, 1]
        ]
    post = []
    for (s_in, s_out), ours_in, ours_out in zip(STATE, (h0, c0), (hn, cn), strict=True):
        pre += [
            # START: the state Triton hands in is uninitialized; use zeros (as our runners start)
            helper.make_node("Where", ["triton_START_3", "triton_zero", s_in], [f"triton_{s_in}_fresh"]),  # [B, L, H]
            helper.make_node("Transpose", [f"triton_{s_in}_fresh"], [ours_in], perm=[1, 0, 2]),  # [L, B, H]
        ]
        post += [
            helper.make_node("Transpose", [ours_out], [f"triton_{s_out}_b"], perm=[1, 0, 2]),  # [B, L, H]
            # a slot that is not READY carries no request this time: it keeps its state
            helper.make_node("Where", ["triton_READY_3", f"triton_{s_out}_b", f"triton_{s_in}_fresh"], [s_out]),
        ]
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(pre + nodes + post)
    onnx.checker.check_model(m)
    return m


def config_pbtxt(name: str, io: dict, head: str, num_layers: int, hidden: int, max_batch: int, instances: int) -> str:
    """Triton's model configuration (text protobuf, ModelConfig in model_config.proto) for the wrapped model.

    `dynamic_batching` and `sequence_batching` are one oneof in ModelConfig; for a stateful model, dynamic batching
    is the sequence batcher's `oldest` strategy (batches requests of different sequences, at most one each).
    """
    x = io["inputs"][0]
    y = io["outputs"][0]
    F = x["shape"][-1]
    O = y["shape"][-1]
    y_dims = f"[ -1, {O} ]" if head == "seq" else f"[ {O} ]"
    controls = ",\n".join(
        f'    {{\n      name: "{n}"\n      control [ {{ kind: {k} int32_false_true: [ 0, 1 ] }} ]\n    }}'
        for n, k in CONTROLS
    )
    states = ",\n".join(
        f'    {{\n      input_name: "{s_in}"\n      output_name: "{s_out}"\n      data_type: TYPE_FP32\n'
        f"      dims: [ {num_layers}, {hidden} ]\n"
        f"      initial_state {{ data_type: TYPE_FP32 dims: [ {num_layers}, {hidden} ] zero_data: true "
        f'name: "zeros" }}\n    }}'
        for s_in, s_out in STATE
    )
    return f"""# Written by lstm-edge from the bundle "{name}". Triton's ONNX Runtime backend; see README.md beside it.
name: "{name}"
backend: "onnxruntime"
max_batch_size: {max_batch}
input [
  {{
    name: "{x["name"]}"
    data_type: TYPE_FP32
    dims: [ -1, {F} ]  # [steps, features] per request; Triton adds the batch axis
  }}
]
output [
  {{
    name: "{y["name"]}"
    data_type: TYPE_FP32
    dims: {y_dims}
  }}
]
sequence_batching {{
  max_sequence_idle_microseconds: {MAX_SEQUENCE_IDLE_US}
  oldest {{
    max_candidate_sequences: {4 * max_batch}
    preferred_batch_size: [ {max_batch} ]
    max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US}
  }}
  control_input [
{controls}
  ]
  state [
{states}
  ]
}}
instance_group [
  {{
    count: {instances}
    kind: KIND_CPU
  }}
]
"""


def check_triton_form(config, streaming: bool) -> None:
    """Raises LstmEdgeError, in one line, for a model whose stream state Triton's implicit state cannot carry as written
    here: state h/c of L layers (not L·D directions), an LSTM (a GRU has no c), full-length sequences.

    Before: a bidirectional model got state dims [L, H] against its graph's [L·2, H] (ORT refused every request), and
    a GRU was told it "has no state inputs/outputs". A backward direction cannot stream at all (it reads each sequence
    from the end), so no state layout would make it one.
    """
    problems = refusals(config, "triton")  # lstm_edge.forms: GRU, lengths, no stream
    if not streaming or NOT_STREAMING in problems:  # no stream (the manifest's fallback route too) is named first
        problems = [NOT_STREAMING] + [p for p in problems if p != NOT_STREAMING]
    if problems:
        raise LstmEdgeError(
            "--target triton cannot serve this model as a stream: " + "; ".join(problems),
            "serve it whole-sequence with Triton's ONNX Runtime backend and your own config.pbtxt, "
            "or use --target python/node",
        )


def write_triton_repo(bundle, variant: str, model_path: Path, stage: Path, max_batch: int, instances: int = 1) -> Path:
    """Fill `stage` (a staged folder that becomes --out) with the model repository. Returns the model's folder.

    A bundle without state I/O (its forward exported whole) gets a whole-sequence repository instead
    (write_whole_sequence_repo). Raises LstmEdgeError for max_batch < 1, a bundle name unfit for a folder, a manifest
    without io, or a model whose stream state Triton cannot carry (check_triton_form).
    """
    import onnx  # deferred: onnx takes ~0.25 s to import, kept off the CLI's start

    if max_batch < 1:
        raise LstmEdgeError(f"--max-batch {max_batch}", "use at least 1")
    name = check_name(bundle.name)  # a folder name here: an edited manifest must not reach outside the stage
    io = bundle.manifest.get("io")
    if not io:
        raise LstmEdgeError("the bundle's manifest has no io section", "re-export the bundle")
    c = bundle.config
    if not bundle.stateful:  # the model's own forward exported whole (or a stateless import): x → y per request
        return write_whole_sequence_repo(bundle, variant, model_path, stage, max_batch, instances)
    check_triton_form(c, bool(bundle.manifest.get("streaming", True)))
    wrapped = wrap_for_triton(onnx.load(str(model_path)), io)
    folder = stage / name
    (folder / "1").mkdir(parents=True)
    onnx.save(wrapped, str(folder / "1" / "model.onnx"))
    (folder / "config.pbtxt").write_text(
        config_pbtxt(name, io, c.head, c.num_layers, c.hidden_size, max_batch, instances)
    )
    readme = TRITON_README.format(name=name, image=TRITON_IMAGE, variant=variant, features=c.input_size)
    (stage / "README.md").write_text(readme)
    info = {
        "format": TRITON_FORMAT,  # what lets `bundle --force` replace this folder (atomic.is_ours)
        "bundle": name,
        "variant": variant,
        "source_model": model_path.name,
        "state": dict(STATE),
    }
    (stage / TRITON_INFO).write_text(json.dumps(info, indent=1) + "\n")
    return folder


def whole_sequence_pbtxt(name: str, io: dict, max_batch: int, instances: int) -> str:
    """Triton's model configuration for a graph without state I/O (x → y): each request is whole sequences, the
    ONNX file as the bundle has it, dynamic batching (Triton batches only requests of the same shape)."""
    x, y = io["inputs"][0], io["outputs"][0]
    x_dims = ", ".join(str(d) if isinstance(d, int) else "-1" for d in x["shape"][1:])
    y_dims = ", ".join(str(d) if isinstance(d, int) else "-1" for d in y["shape"][1:])
    return f"""# Written by lstm-edge from the bundle "{name}" (whole sequences, no state). See README.md beside it.
name: "{name}"
backend: "onnxruntime"
max_batch_size: {max_batch}
input [
  {{
    name: "{x["name"]}"
    data_type: {"TYPE_INT64" if x.get("dtype") == "int64" else "TYPE_FP32"}
    dims: [ {x_dims} ]  # one whole sequence per batch row; Triton adds the batch axis
  }}
]
output [
  {{
    name: "{y["name"]}"
    data_type: TYPE_FP32
    dims: [ {y_dims} ]
  }}
]
dynamic_batching {{
  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US}
}}
instance_group [
  {{
    count: {instances}
    kind: KIND_CPU
  }}
]
"""


def write_whole_sequence_repo(bundle, variant: str, model_path: Path, stage: Path, max_batch: int, instances: int):
    """The model repository of a bundle without state I/O: its variant's ONNX unchanged and a whole-sequence
    config.pbtxt (no sequence batcher: there is no state to keep). Returns the model's folder. Raises LstmEdgeError
    for a time-major model (Triton puts the batch axis first)."""
    import shutil  # deferred: only this writer copies a file as it is

    name, io = check_name(bundle.name), bundle.manifest["io"]
    if io.get("layout") == "time_major" or not bundle.config.batch_first:
        raise LstmEdgeError(
            "--target triton needs the batch axis first, and this whole-graph model is time-major ([T, B, …])",
            "re-export it batch-first, or use --target python/node",
        )
    folder = stage / name
    (folder / "1").mkdir(parents=True)
    shutil.copyfile(model_path, folder / "1" / "model.onnx")
    (folder / "config.pbtxt").write_text(whole_sequence_pbtxt(name, io, max_batch, instances))
    readme = WHOLE_README.format(name=name, image=TRITON_IMAGE, variant=variant, features=bundle.config.input_size)
    (stage / "README.md").write_text(readme)
    info = {"format": TRITON_FORMAT, "bundle": name, "variant": variant, "source_model": model_path.name, "state": {}}
    (stage / TRITON_INFO).write_text(json.dumps(info, indent=1) + "\n")
    return folder


WHOLE_README = """# {name} ({variant}) for Triton Inference Server, whole sequences

A model repository for Triton's ONNX Runtime backend. The model was exported as a whole graph (x → y, no state
inputs or outputs), so each request carries whole sequences and Triton keeps no state; requests of the same shape
are batched together (dynamic batching).

```bash
docker run --rm -p8000:8000 -p8001:8001 -p8002:8002 -v $PWD:/models {image} tritonserver --model-repository=/models
```

Each request: `x` FP32 [batch, steps, {features}]; the response is `y`. The model file is the bundle's ONNX as it is.
"""


def write_triton(job: TargetJob) -> None:
    """Fill job.stage with the Triton model repository (write_triton_repo, one instance); raises as it does."""
    write_triton_repo(job.bundle, job.variant, job.model_path, job.stage, job.max_batch)


TRITON_README = """# {name} ({variant}) for Triton Inference Server

A model repository for Triton's ONNX Runtime backend. Triton keeps each stream's LSTM state (h, c) between requests
(implicit state); a client sends only the new steps with a sequence id, start on the first request, end on the last.

```bash
docker run --rm -p8000:8000 -p8001:8001 -p8002:8002 -v $PWD:/models {image} tritonserver --model-repository=/models
```

Each request: `x` FP32 [1, steps, {features}] (batch 1 per request; Triton batches streams together), with
`sequence_id`, `sequence_start` and `sequence_end` set (tritonclient: `client.infer("{name}", inputs,
sequence_id=42, sequence_start=True)`). The response is `y`. The model file is the bundle's ONNX wrapped so the state
is batch-first and START resets it (see lstm_edge/targets/triton.py in lstm-edge for why).
"""


def check_against_onnx(config_text: str, model_path: Path) -> list[str]:
    """Parse config.pbtxt with Triton's own ModelConfig protobuf and compare it with the ONNX file's inputs/outputs.

    Returns a list of problems (empty when they agree). Needs tritonclient (the `test` extra) and onnx.
    """
    import onnx  # deferred: onnx takes ~0.25 s to import, kept off the CLI's start
    from google.protobuf import text_format

    pb = model_config_pb2()
    cfg = text_format.Parse(config_text, pb.ModelConfig())
    m = onnx.load(str(model_path), load_external_data=False)
    onnx_dtype = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.INT32: "TYPE_INT32"}
    tensors = {v.name: v for v in list(m.graph.input) + list(m.graph.output)}
    problems = []

    def dims_of(name):
        return [d.dim_value if d.dim_value > 0 else -1 for d in tensors[name].type.tensor_type.shape.dim]

    def check(name, dtype, dims, batched=True):
        if name not in tensors:
            problems.append(f"{name} is not an input or output of the ONNX model")
            return
        want = onnx_dtype.get(tensors[name].type.tensor_type.elem_type, "?")
        if pb.DataType.Name(dtype) != want:
            problems.append(f"{name}: config says {pb.DataType.Name(dtype)}, ONNX says {want}")
        onnx_dims = dims_of(name)
        full = ([-1] if batched and cfg.max_batch_size > 0 else []) + list(dims)
        if full != onnx_dims:
            problems.append(f"{name}: config dims (with batch) {full}, ONNX dims {onnx_dims}")

    for t in list(cfg.input) + list(cfg.output):
        check(t.name, t.data_type, t.dims)
    sb = cfg.sequence_batching
    for s in sb.state:
        check(s.input_name, s.data_type, s.dims)
        check(s.output_name, s.data_type, s.dims)
    for ci in sb.control_input:
        check(ci.name, pb.TYPE_INT32, [1])
    declared = {t.name for t in list(cfg.input) + list(cfg.output)} | {ci.name for ci in sb.control_input}
    declared |= {n for s in sb.state for n in (s.input_name, s.output_name)}
    for name in tensors:
        if name not in declared:
            problems.append(f"ONNX tensor {name} is not declared in config.pbtxt")
    return problems


def model_config_pb2():
    """Triton's ModelConfig protobuf module, as tritonclient ships it.

    The generated file sits in tritonclient/grpc/, whose package __init__ demands grpcio (the [grpc] extra, which
    also pins protobuf<7 against this project's protobuf 7). The message definitions need only protobuf, so the
    file is loaded by itself from the plain `tritonclient` wheel. Raises LstmEdgeError where tritonclient is not
    installed.
    """
    try:
        import tritonclient  # deferred: optional (the test extra), needed only to check a config
    except ImportError as e:
        raise LstmEdgeError("checking a Triton config needs tritonclient", "pip install tritonclient") from e
    path = Path(tritonclient.__file__).parent / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("tritonclient_model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
