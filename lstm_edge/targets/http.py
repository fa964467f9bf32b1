"""`lstm-edge bundle --target http`: a folder that serves the model over HTTP from Python's standard library
(server.py: http.server's ThreadingHTTPServer and json around lstm_edge.load, no web framework), with check.py,
which starts the server on a free port and POSTs every golden case to it."""

from __future__ import annotations

import json

from lstm_edge.targets.common import TargetJob, copy_template, io_names, write_app_frame

README = """# {name} ({variant}) over HTTP

Standard library only (http.server + json) around `lstm_edge.load`, which first checks the model on this machine
against the golden cases here: a model that fails is refused in one line and the server exits 1 without serving.

```bash
pip install 'lstm-edge[cpu]'
python check.py                   # starts server.py on a free port, POSTs every golden case: PASS/FAIL, exit 0/1
python server.py --port 8000      # --host 0.0.0.0 to listen beyond this machine
curl -s localhost:8000/healthz
curl -s localhost:8000/v1/predict -d '{example}'
```

`POST /v1/predict` takes {{"x": ...}} in the model's own layout ({layout}) and optionally the state to start
from ({states}){lengths}; it answers with {outputs}. Bad JSON or shapes get HTTP 400 and
{{"error": "the problem — the fix"}}; a body over `--max-body` (default: lstm_edge.limits.MAX_JSON_INPUT_BYTES)
gets 413; NaN or Infinity in the input gets 400 unless the server was started with `--allow-nonfinite`.
Requests run on threads without a lock: `runner.run` is thread-safe (server.py's docstring says why).
Each golden case's bound is in golden/index.json.
"""


def example_x(job: TargetJob) -> list:
    """A two-step, one-sequence x in the model's own layout: token ids [B, T] (or [T, B]), else [B, T, F] (or
    [T, B, F]) floats; what the README's curl sends."""
    config = job.bundle.config
    steps = [1, 2] if config.vocab_size else [[0.5] * config.input_size, [0.25] * config.input_size]
    return [steps] if config.batch_first else [[s] for s in steps]


def write_http(job: TargetJob) -> None:
    """Fill job.stage with the app frame (model, manifest, golden vectors, README with a working curl example),
    server.py and check.py."""
    config = job.bundle.config
    inputs, outputs = io_names(job.bundle)
    states = [n for n in inputs if n in ("h0", "c0")]  # none for a whole graph without state I/O
    state_words = ", ".join(f"`{n}`" for n in states) + ", zeros when left out" if states else "this model takes none"
    layout = "token ids " if config.vocab_size else ""
    layout += ("[B, T" if config.batch_first else "[T, B") + ("]" if config.vocab_size else ", F]")
    fields = {
        "{example}": json.dumps({"x": example_x(job)}),
        "{layout}": layout,
        "{states}": state_words,
        "{outputs}": ", ".join(f"`{n}`" for n in outputs),
        "{lengths}": ", and `lengths` [B] (1..T each; T when left out)" if "lengths" in inputs else "",
    }
    readme = README
    for key, value in fields.items():  # braces doubled: write_app_frame formats {name}, {variant}, … afterwards
        readme = readme.replace(key, value.replace("{", "{{").replace("}", "}}"))
    write_app_frame(job, "http", readme)
    copy_template(job, "server.py")
    copy_template(job, "check.py")
