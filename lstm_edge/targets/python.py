"""`lstm-edge bundle --target python`: a folder for a Python app, whose example.py streams the golden case one
sample at a time through lstm_edge.load and checks it (a model without state I/O: each case whole)."""

from __future__ import annotations

from lstm_edge.targets.common import TargetJob, copy_template, write_app_frame

README = (
    "# {name} in a Python app\n\n```bash\npip install 'lstm-edge[cpu]'\npython example.py   # streams the golden "
    'case one sample at a time and checks it\n```\nIn your app: `runner = lstm_edge.load(this_folder, variant="{variant}")`, '
    "then `stream = runner.stream()` and `y = stream.step(x_t)` per sample.\n"
)

# A model without state I/O runs whole sequences: its README says so instead of streaming (a trial read both).
README_WHOLE = (
    "# {name} in a Python app\n\n```bash\npip install 'lstm-edge[cpu]'\npython example.py   # runs each golden case "
    'whole and checks it\n```\nIn your app: `runner = lstm_edge.load(this_folder, variant="{variant}")`, then '
    "`y, _ = runner.run(x)` per batch of whole sequences.\n"
)


def write_python(job: TargetJob) -> None:
    """Fill job.stage with the app frame (model, manifest, golden vectors, README) and example.py."""
    write_app_frame(job, "python", README if job.bundle.stateful else README_WHOLE)
    copy_template(job, "example.py")
