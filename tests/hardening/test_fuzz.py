"""Bounded fuzzing in the suite (benchmarks/fuzz.py runs the same targets, lstm_edge.fuzzing, for minutes): loaders and parsers
either succeed or raise the one clear LstmEdgeError."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

import lstm_edge
from lstm_edge import fuzzing as ft
from tests.conftest import SHIPPED

GOOD_MANIFEST = json.loads((SHIPPED / "manifest.json").read_text())

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def runner():
    return lstm_edge.load(SHIPPED, provider="cpu")


@FUZZ
@given(ft.checkpoint_bytes)
def test_checkpoint_loader_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        ft.check_checkpoint(data, Path(tmp))


@FUZZ
@given(ft.checkpoint_dicts())
def test_checkpoint_loader_dicts(data):
    with tempfile.TemporaryDirectory() as tmp:
        ft.check_checkpoint(data, Path(tmp))


@FUZZ
@given(ft.manifests(GOOD_MANIFEST))
def test_manifest_loader(manifest):
    with tempfile.TemporaryDirectory() as tmp:
        ft.check_manifest(manifest, Path(tmp), SHIPPED)


@FUZZ
@given(ft.input_files)
def test_input_parsers(runner, spec):
    with tempfile.TemporaryDirectory() as tmp:
        ft.check_input(spec, Path(tmp), runner)
