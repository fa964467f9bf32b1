"""verify's cases and the reference that answers them: the matrix's inputs (shapes, initial states, seeds), the
float64 reference runner a bundle is judged against, and its answers, computed once.

Below both proofs that use them: lstm_edge.parity (every runtime against these answers) and
lstm_edge.codegen.matrix (the generated C, on the host and under qemu, against the very same cases).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from lstm_edge.bundle import Bundle
from lstm_edge.config import LENGTHS, is_seed_form
from lstm_edge.data import model_inputs, probe_inputs
from lstm_edge.runtimes import RUNTIMES, Runner, RunnerOptions, open_runner

# `--quick`: a smaller matrix for a fast check (verify's flag, bench --auto's parity check).
QUICK = {"batches": (1, 4), "seqs": (1, 7, 100), "drift_seq": 200}
# `--demo`: the smallest matrix that still tells the story (a batch, the trained length, streaming one step and the
# whole sequence, drift over 200 steps), sized so `make demo` stays within ~2 min on a quiet 2-core machine.
DEMO = {"batches": (1, 4), "seqs": (7, 100), "chunks": (1, "T"), "drift_seq": 200}


@dataclass
class VerifyConfig:
    """What verify runs: providers × variants × batches × seqs × {zero, random} initial state × modes (the full
    sequence and streaming in each of `chunks` steps per call; "T": the whole sequence in one call), plus the drift
    of one B=1 sequence of drift_seq steps streamed one step at a time."""

    providers: tuple[str, ...] | None = None  # None: every runtime installed here
    variants: tuple[str, ...] | None = None  # None: every variant in the bundle
    batches: tuple[int, ...] = (1, 4, 16)
    seqs: tuple[int, ...] = (1, 7, 100, 1000)
    chunks: tuple[int | str, ...] = (1, 7, "T")
    drift_seq: int = 1000
    strict: bool = False
    verify_hash: bool = True
    progress: bool = True
    seed: int = 2024
    extra: dict = field(default_factory=dict)

    def quick(self) -> VerifyConfig:
        """This config with the QUICK matrix (B 1,4; T 1,7,100; drift over 200 steps)."""
        return replace(self, **QUICK)

    def demo(self) -> VerifyConfig:
        """This config with the DEMO matrix (B 1,4; T 7,100; one step and the whole sequence per call; drift over
        200 steps): 24 runs per runtime × variant instead of 96."""
        return replace(self, **DEMO)


@dataclass(frozen=True)
class ReferenceCase:
    """One input of the matrix and the reference's answer: x [B, T, F] float32, h0/c0 [L, B, H] float32,
    want (y, hn, cn) as the reference computed them (float64)."""

    batch: int
    seq: int
    random_state: bool
    x: np.ndarray
    h0: np.ndarray
    c0: np.ndarray | None  # None for a GRU (its state is h alone)
    want: tuple[np.ndarray, ...]  # in config.output_names order: y, hn[, cn]
    lengths: np.ndarray | None = None  # [B] for a variable-length model: mixed, including 1 and T

    @property
    def state(self) -> tuple[np.ndarray, ...]:
        """The initial state as a runner takes it: (h0, c0), or (h0,) for a GRU."""
        return (self.h0,) if self.c0 is None else (self.h0, self.c0)


def reference_kind(bundle: Bundle) -> str:
    """The manifest's "reference" kind (SEAMS 5): lstm-edge-checkpoint when missing (bundles before the key)."""
    return (bundle.manifest.get("reference") or {}).get("kind", "lstm-edge-checkpoint")


def reference_artifact(bundle: Bundle) -> str:
    """What verify judges a bundle against here: "checkpoint" (its PyTorch checkpoint, in float64) or "fp32" (its fp32
    ONNX cast to double, run by onnx.reference) — the latter for an imported model, a bundle without a checkpoint,
    and where PyTorch is not installed (the lean install, lstm-edge[cpu]: export proved that fp32 ONNX against the
    checkpoint when it wrote the bundle). Raises nothing."""
    if reference_kind(bundle) == "onnx-float64" or "checkpoint" not in bundle.manifest["artifacts"]:
        return "fp32"
    return "checkpoint" if RUNTIMES["torch"].unavailable_reason() is None else "fp32"


def reference_runner(bundle: Bundle) -> Runner:
    """The one place verify chooses what a bundle is judged against, in float64: the checkpoint (torch), or for an
    imported model ("reference": {"kind": "onnx-float64"}) or any bundle without a checkpoint (the intake's fallback
    export of a user's own forward) its fp32 ONNX cast to double and run by onnx.reference.

    Each runtime is then judged by its own float32 error, not by the difference of two float32 implementations
    (over 1000 steps with a cell state of ~60 that difference reaches the 1e-5 bound by itself: measured ORT 8.8e-6
    and oneDNN 4.8e-6 from exact, 1.02e-5 apart). Raises LstmEdgeError when the reference cannot be opened.
    """
    # A bundle without a checkpoint (an import, or the intake's fallback export of a user's own forward, which was
    # validated against that forward at export), or one verified without torch, is judged against its fp32 ONNX in
    # float64 (reference_artifact).
    if reference_artifact(bundle) == "fp32":
        return open_runner(bundle.root, "reference", options=RunnerOptions(verify_hash=False))
    return open_runner(bundle.root, "torch", options=RunnerOptions(verify_hash=False, float64=True))


def reference_cases(bundle_path: str | Path, cfg: VerifyConfig | None = None) -> list[ReferenceCase]:
    """verify's cases for a bundle, with the answers of the reference verify judges by (reference_runner): one
    ReferenceCase per seq × batch × initial state of `cfg` (VerifyConfig(): 4 × 3 × 2 = 24), in verify's order and
    from verify's seeds, so a check outside verify (the C under qemu: lstm_edge.codegen.matrix) runs the very same
    inputs. Raises LstmEdgeError when the bundle or its reference cannot be opened."""
    bundle = Bundle.open(bundle_path)
    with reference_runner(bundle) as reference:
        return compute_reference_cases(reference, bundle, cfg or VerifyConfig())


def compute_reference_cases(reference: Runner, bundle: Bundle, cfg: VerifyConfig) -> list[ReferenceCase]:
    """reference_cases with an open reference runner (verify keeps it open for the drift run): one ReferenceCase per
    seq × batch × initial state of `cfg`, in verify's order, each from seed cfg.seed + its index."""
    cases = []
    # A model whose state is not a graph input (an imported one; manifest "streaming": false) starts at zero only.
    states = (False, True) if bundle.manifest.get("streaming", True) else (False,)
    for k, (B, T, rs) in enumerate((B, T, rs) for T in cfg.seqs for B in cfg.batches for rs in states):
        case = case_inputs(bundle.config, B, T, rs, cfg.seed + k)
        y, state = reference.run(case.x, case.state, case.lengths)
        cases.append(replace(case, want=(y, *state)))
    return cases


def case_inputs(config, B: int, T: int, random_state: bool, seed: int) -> ReferenceCase:
    """The seed's form: probe_inputs (its own task's sequences where generated). Every other form: model_inputs,
    in the model's layout, with token ids at both edges of the table, and for a variable-length model lengths
    mixed within the batch (including 1 and T) in the zero-state cases and every sequence at T in the random-state
    ones (those also stream: a stream feeds whole steps)."""
    if is_seed_form(config):
        x, h0, c0 = probe_inputs(config, B, T, random_state, seed)
        return ReferenceCase(B, T, random_state, x, h0, c0, ())
    feeds = dict(zip(config.input_names, model_inputs(config, B, T, random_state, seed), strict=True))
    lengths = feeds.get(LENGTHS)
    if lengths is not None and random_state:
        lengths = np.full(B, T, np.int64)
    return ReferenceCase(B, T, random_state, feeds["x"], feeds["h0"], feeds.get("c0"), (), lengths)
