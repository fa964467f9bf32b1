"""`lstm-edge doctor` and the environment probe that verify and bench record."""

from __future__ import annotations

import json

from click.testing import CliRunner

from lstm_edge.cli import main
from lstm_edge.environment import available_providers, cores, environment


def test_doctor_json():
    r = CliRunner().invoke(main, ["doctor", "--json"])
    assert r.exit_code == 0
    doc = json.loads(r.output)
    assert "CPUExecutionProvider" in doc["ort_providers"] and "avx2" in doc["cpu_features"]


def test_environment_record():
    env = environment()
    assert env["versions"]["onnxruntime"] and "CPUExecutionProvider" in env["ort_providers"]
    assert env["cpu"]["cores"] == cores() >= 1 and "avx2" in env["cpu"] and env["cpu"]["model"]
    avail = available_providers()
    assert set(avail) == {"torch", "cpu", "cuda", "openvino", "tract"} and avail["torch"] is None
