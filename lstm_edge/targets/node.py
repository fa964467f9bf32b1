"""`lstm-edge bundle --target node`: an npm package around onnxruntime-node whose `npm test` (check.mjs) runs the
golden cases whole and step by step."""

from __future__ import annotations

import json

from lstm_edge.targets.common import TargetJob, copy_template, write_app_frame

ORT_NODE_VERSION = "1.30.0"
README = (
    "# {name} in a Node.js program\n\n```bash\nONNXRUNTIME_NODE_INSTALL=skip npm install   # the CPU binary ships in "
    "the package\nnpm test                                   # full sequence + step by step vs golden vectors\n```\n"
    "In your service: `ort.InferenceSession.create('{model}')`, feed `x` [batch, seq, {features}] and carry `hn`/`cn` "
    "back in as `h0`/`c0`.\n"
)


def write_node(job: TargetJob) -> None:
    """Fill job.stage with the app frame, parity.mjs, check.mjs and a package.json pinning onnxruntime-node."""
    write_app_frame(job, "node", README)
    copy_template(job, "parity.mjs")
    copy_template(job, "check.mjs")
    package = {
        "name": f"{job.bundle.name}-lstm-edge",
        "version": "1.0.0",
        "private": True,
        "type": "module",
        "description": f"{job.bundle.name} LSTM ({job.variant}) with a golden-vector self-check",
        "scripts": {"test": "node check.mjs"},
        "dependencies": {"onnxruntime-node": ORT_NODE_VERSION},
    }
    (job.stage / "package.json").write_text(json.dumps(package, indent=2) + "\n")
