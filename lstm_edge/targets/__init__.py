"""`lstm-edge bundle`: a self-contained folder to copy into a Python app, a Node.js service, a web page, a Triton
model repository or a C project, each carrying the bundle's golden cases and a program that checks itself on them.

TARGETS is the one place a target is registered: one module per target (python.py, node.py, web.py, triton.py,
c.py) holds its writer; lstm_edge.targets.common holds the Target entry, the checks and the golden vectors they
share. Adding a target is one module and one line here (plus its tests); the CLI's --target reads this table.
"""

from __future__ import annotations

from pathlib import Path

from lstm_edge.atomic import out_folder, staged_dir
from lstm_edge.bundle import Bundle
from lstm_edge.errors import LstmEdgeError, ParityError
from lstm_edge.runtimes import RunnerOptions, open_runner
from lstm_edge.targets.c import write_c
from lstm_edge.targets.common import Target, TargetJob
from lstm_edge.targets.http import write_http
from lstm_edge.targets.node import ORT_NODE_VERSION, write_node
from lstm_edge.targets.python import write_python
from lstm_edge.targets.triton import TRITON_IMAGE, write_triton
from lstm_edge.targets.web import write_web

VARIANTS = ("fp32", "int8")

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("python", "a Python app folder: example.py streams a golden case", write_python, VARIANTS,
               "Python 3.10+ with lstm-edge[cpu]"),
        Target("node", "an npm package: `npm test` checks onnxruntime-node on the golden cases", write_node, VARIANTS,
               f"Node.js and npm (onnxruntime-node {ORT_NODE_VERSION})"),
        Target("web", "a static page checking onnxruntime-web (WASM, shipped in the folder)", write_web, VARIANTS,
               "any static file server and a browser with WebAssembly"),
        Target("triton", "a Triton model repository: sequence batcher, state kept in Triton", write_triton, VARIANTS,
               f"Triton Inference Server with the onnxruntime backend ({TRITON_IMAGE})"),
        Target("c", "a C99 project (lstm_edge.codegen) with its golden-case check program", write_c, VARIANTS,
               "a C99 compiler and make (qemu-system-arm and arm-none-eabi-gcc for the Cortex-M4 check)"),
        Target("http", "a stdlib HTTP server (server.py) around lstm_edge.load; check.py POSTs the golden cases", write_http, VARIANTS, "Python 3.10+ with lstm-edge[cpu]"),
    )
}  # fmt: skip


def write_target(
    bundle_path: str | Path,
    target: str,
    out: str | Path,
    variant: str = "fp32",
    force: bool = False,
    ort_web: str | None = None,
    verify_hash: bool = True,
    max_batch: int = 64,
) -> Path:
    """Write the `target` folder for a bundle's `variant` into `out`, atomically (all of it or nothing). Returns `out`.

    Raises LstmEdgeError for a target not in TARGETS, a variant it does not take, a bundle that cannot be opened, a
    variant the bundle lacks (or whose hash does not match), an --out that
    overlaps the bundle or exists without `force` (or is not ours to replace), and whatever the target's writer
    refuses (a model it cannot serve, onnxruntime-web not found); ParityError (nothing written) where ONNX Runtime
    CPU misses the variant's golden cases (its self-check, skipped with verify_hash=False).
    """
    spec = TARGETS.get(target)
    if spec is None:
        raise LstmEdgeError(f"unknown target {target!r}", f"choose one of {', '.join(TARGETS)}")
    if variant not in spec.variants:
        raise LstmEdgeError(f"--variant {variant}", f"embedding targets take {' or '.join(spec.variants)}")
    # A bundle without state I/O gets whole-sequence apps (python, node, web); triton and c refuse it in one line.
    bundle = Bundle.open(bundle_path)
    entry = bundle.entry(variant)
    model_path = bundle.artifact(variant, verify_hash)
    shown = Path(out)
    folder = out_folder(shown, inputs=[bundle.root, *([ort_web] if ort_web else [])], force=force)
    if verify_hash:  # the folder is a self-checking app: never package a model that fails its own golden cases
        try:  # a trial's tampered bundle was packaged, exit 0, and failed only when the app first ran
            open_runner(bundle.root, "cpu", options=RunnerOptions(variant=variant, self_check=True)).close()
        except ParityError as e:
            raise ParityError(e.problem, "nothing was written; `lstm-edge verify BUNDLE` against the float64 reference tells a "
                              "corrupt bundle from a runtime fault; re-export, or pass --no-verify-hash to package it "
                              "without this check") from e  # fmt: skip
    with staged_dir(folder, replace=force) as stage:
        spec.write(TargetJob(bundle, variant, entry, model_path, stage, verify_hash, ort_web, max_batch))
    return shown


__all__ = ["TARGETS", "Target", "TargetJob", "write_target"]
