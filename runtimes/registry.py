"""The one table of runtimes: each runtime's facts in one RuntimeInfo, keyed by provider name in RUNTIMES.

A new runtime is one new runner module (a Runner subclass, see runtimes.base) plus one RuntimeInfo entry here; the
CLI's help, `open_runner`, environment (what is usable here, which versions explain a figure), tolerances (the fp32
drift bound), doctor and the runners' refusals of recurrent-node traits all read this table.

The table lives in this light module, not beside each runner, because it must be readable without importing what
the runners need (torch, onnxruntime, openvino, tract, the C generator): tolerances reads it, and the C generator
reads tolerances. The runner class is named by its path and imported only when opened (RuntimeInfo.runner_class).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.extras import missing_extra
from lstm_edge.forms import FORMS
from lstm_edge.onnx_io import RECURRENT_TRAITS
from lstm_edge.runtimes.probes import c_compiler_missing, cuda_unavailable_reason, module_missing

if TYPE_CHECKING:  # typing only: runners import this module
    from lstm_edge.runtimes.base import Runner


@dataclass(frozen=True)
class RuntimeInfo:
    """What lstm-edge knows about one runtime, in one place.

    provider: the name users pick (--provider, open_runner); runtime: what its runner reports (Runner.runtime,
    describe()["runtime"]). runner: "module:Class", imported lazily so optional packages stay optional. extra: the
    pip extra that installs it (None: in the core install); distributions: the PyPI names whose versions explain its
    figures. module / probe: how to tell it is usable here (the module to find, or a function returning why not).
    fp32_drift_per_step: the scaled float32 error it may add per recurrent step beyond tolerances.FP32_ABS, with
    fp32_drift_reason, the measurement it comes from. refusals: {form or recurrent-node trait: why it refuses it}
    (traits are enforced by Runner before the runtime sees a model). deployable: False for the float64 judge, which
    verify, bench and doctor do not offer as a target.
    """

    provider: str
    runtime: str
    runner: str
    summary: str
    extra: str | None
    distributions: tuple[str, ...]
    fp32_drift_per_step: float
    fp32_drift_reason: str
    refusals: Mapping[str, str] = field(default_factory=dict)
    module: str | None = None
    probe: Callable[[], str | None] | None = None
    deployable: bool = True

    def unavailable_reason(self) -> str | None:
        """None when this runtime is usable here, else why not (one line with the fix). Raises nothing."""
        if self.probe is not None:
            return self.probe()
        return module_missing(self.module, self.extra or "") if self.module else None

    def availability(self) -> tuple[bool, str]:
        """(usable here, why not — "" when usable). Imports no runtime but ONNX Runtime for cuda; raises nothing."""
        reason = self.unavailable_reason()
        return reason is None, reason or ""

    def variant_refusal(self, variant: str) -> str | None:
        """Why this runtime never runs `variant`, by design (its refusals' "variants other than A and B" entry),
        or None where it may. verify lists such a pair as unsupported rather than as a variant no runtime could
        load (a trial's `verify --providers c` failed on the fp16 variant the c runtime never builds)."""
        for key, why in self.refusals.items():
            if key.startswith("variants other than "):
                allowed = key.removeprefix("variants other than ").replace(" and ", ", ").split(", ")
                return None if variant in allowed else why
        return None

    @property
    def trait_limits(self) -> dict[str, str]:
        """{recurrent-node trait (onnx_io.RECURRENT_TRAITS): why this runtime rejects or miscomputes it}."""
        return {k: v for k, v in self.refusals.items() if k in RECURRENT_TRAITS}

    def runner_class(self) -> type[Runner]:
        """The Runner subclass, imported now.

        Raises:
            LstmEdgeError: its package is not installed (the extra that installs it), or its module fails to load a
                shared library (OSError on import), with the reinstall fix.
        """
        module, _, cls = self.runner.partition(":")
        try:
            return getattr(importlib.import_module(module), cls)
        except ImportError as e:  # its package is an extra that is not installed (torch: [torch])
            err = missing_extra(e)
            if err is None:
                raise
            raise err from e
        except OSError as e:  # a runtime whose shared libraries fail to load raises OSError on import, not ImportError
            raise LstmEdgeError(
                f"the {self.provider} runtime cannot be imported ({type(e).__name__}: {first_line(e, 160)})",
                "reinstall it (pip install --force-reinstall …) or run `lstm-edge doctor`",
            ) from e


# Measured here (onnxruntime 1.32, OpenVINO 2026.4, tract 0.23.9; T=5, B=3, against the float64 ONNX reference, see
# tests/test_foreign_onnx.py and benchmarks/foreign_runtime_limits.py). A runtime not naming a trait computes it like
# the reference (≤ 3e-7 scaled).
ORT_LAYOUT_1 = "ONNX Runtime rejects recurrent nodes with layout=1 (batch-major)"
# The shipped model's fp32 drift (benchmarks/fp32_drift.py, AMD EPYC AVX2+FMA): 16 draws at B=16, T = 100/300/1000.
SHIPPED_DRIFT = "≤ 8.8e-6 worst max scaled error of y/hn/cn at every T (benchmarks/fp32_drift.py: 16 draws, B=16)"

RUNTIMES: dict[str, RuntimeInfo] = {
    info.provider: info
    for info in (
        RuntimeInfo(
            provider="torch",
            runtime="torch",
            runner="lstm_edge.runtimes.torch_runner:TorchRunner",
            summary="the bundle's PyTorch checkpoint: the reference every runtime is judged against",
            extra="torch",
            distributions=("torch",),
            fp32_drift_per_step=0.0,
            fp32_drift_reason=f"PyTorch float32 (oneDNN's fused nn.LSTM, itself up to ~2e-6 from exact): {SHIPPED_DRIFT}",
            refusals={
                "bare .onnx": "the torch runtime runs the bundle's checkpoint; a bare .onnx has none",
                "variants other than fp32": "the torch reference is fp32 only",
            },
            module="torch",
        ),
        RuntimeInfo(
            provider="cpu",
            runtime="onnxruntime",
            runner="lstm_edge.runtimes.ort_cpu:OrtRunner",
            summary="ONNX Runtime, CPU execution provider",
            extra="cpu",
            distributions=("onnxruntime",),
            # the worst 0.25-wide bin mean bias of its Sigmoid, the per-step allowance tract's entry takes too
            fp32_drift_per_step=1.8e-8,
            fp32_drift_reason="ONNX Runtime float32: its Sigmoid's mean error over a 0.25-wide bin near saturation "
            "is -1.77e-8 (exactly rounded float32: 8.6e-9; benchmarks/fp32_drift.py, AMD EPYC AVX2+FMA, ORT 1.32), a "
            "forget gate there drifts the cell state by that much a step: 1e-5 + 1.8e-5 at T=1000. "
            f"{SHIPPED_DRIFT}, but the parity matrix's draw at B=16, T=1000 from a random state reached 1.42e-5 "
            "(torch 7.0e-6, OpenVINO 6.7e-6, C 7.7e-6 on that draw); 2.6e-6 on the shipped golden case (T=100)",
            refusals={"layout-1": ORT_LAYOUT_1},
            module="onnxruntime",
        ),
        RuntimeInfo(
            provider="cuda",
            runtime="onnxruntime-cuda",
            runner="lstm_edge.runtimes.ort_cuda:OrtCudaRunner",
            summary="ONNX Runtime on CUDA; refuses rather than falling back to the CPU",
            extra="cuda",
            distributions=("onnxruntime-gpu",),
            fp32_drift_per_step=0.0,
            fp32_drift_reason="not measured by benchmarks/fp32_drift.py (no GPU there): held to FP32_ABS, the bound "
            "every float32 runtime shares, which the parity matrix checks where a CUDA device is present",
            refusals={
                "layout-1": ORT_LAYOUT_1,
                "nodes placed on the CPU": "some nodes cannot run on CUDA and would fall back to the CPU "
                "(accepted with allow_fallback)",
            },
            probe=cuda_unavailable_reason,
        ),
        RuntimeInfo(
            provider="openvino",
            runtime="openvino",
            runner="lstm_edge.runtimes.openvino_runner:OpenVinoRunner",
            summary="OpenVINO on the CPU at f32 (bf16 on request)",
            extra="openvino",
            distributions=("openvino",),
            fp32_drift_per_step=0.0,
            fp32_drift_reason=f"OpenVINO at f32: {SHIPPED_DRIFT}; 5.4e-6 on the shipped golden case (T=100)",
            refusals={
                "int8": "OpenVINO has no DynamicQuantizeLSTM (com.microsoft), so it cannot run the int8 variant",
                "layout-1": "OpenVINO ignores layout=1 (it fails with 'Can not clone with new dims', or swaps batch "
                "and time)",
                "sequence-lens": FORMS["lengths"].refused_by["openvino"],  # the lengths form's words
                "peephole": "OpenVINO ignores LSTM peephole weights P (measured 0.54 scaled error)",
            },
            module="openvino",
        ),
        RuntimeInfo(
            provider="tract",
            runtime="tract",
            runner="lstm_edge.runtimes.tract_runner:TractRunner",
            summary="tract (Sonos), the runtime made for embedded devices",
            extra="tract",
            distributions=("tract",),
            # tract's float32 sigmoid is a rational approximation (tract-linalg: "no exponentiation"; on x86_64 one
            # FMA kernel for AVX2 and AVX-512 alike), biased with one sign over whole ranges of z, so a forget gate
            # off by δ scales the cell state by (1 ± δ) every step and the error grows instead of averaging out.
            fp32_drift_per_step=3.5e-7,
            fp32_drift_reason="tract's sigmoid is biased with one sign: over z ∈ [3, 12) its mean error is +1.3e-8 "
            "(ORT's +2.8e-10), and near saturation (z ≈ ±15) the mean over a 0.25-wide bin reaches 3.5e-7 (ORT's "
            "1.8e-8, exact rounding's 8.6e-9). Measured (benchmarks/fp32_drift.py, AMD EPYC AVX2+FMA, tract 0.23.9): "
            "swapping tract's sigmoid alone into a numpy float32 LSTM reproduces tract's error (3.6e-5 against "
            "tract's own 3.2e-5 on the same draw at T=1000; ORT's or exactly rounded activations give 1-4e-6, "
            "tract's tanh alone 4e-6). On the shipped model, 16 draws at B=16, worst max scaled error of y/hn/cn: "
            "tract 4.1e-6 / 2.5e-5 / 1.0e-4 at T = 100 / 300 / 1000 (~1e-7 per step), so its bound grows by the "
            "worst bias per step; a real defect (a swapped gate block) is off by ~1e-1, far above it.",
            refusals={
                "int8": "tract has no DynamicQuantizeLSTM (com.microsoft), so it cannot run the int8 variant",
                "sequence-lens": FORMS["lengths"].refused_by["tract"],  # the lengths form's words
                "zero-state-free-batch": "tract 0.23.9 panics, aborting the whole process, on a recurrent node with "
                "no initial_h (or an LSTM with no initial_c) while the batch is symbolic (UndeterminedSymbol)",
                # Measured (benchmarks/foreign_runtime_limits.py; the graph dumped through tract's NNEF writer):
                # tract's declutter hoists the input projection X·Wᵀ out of the LSTM's Scan and moves it before the
                # Tile, dropping the repetition, so the Scan iterates over the un-repeated [1, B, 4H] tensor: one
                # step (a bare LSTM's Y has 1 step where X has 5; an autoencoder broadcasts that step back to T).
                "repeated-input": "tract 0.23.9 computes a recurrent node whose input is one tensor repeated over "
                "time (Tile/Expand, an autoencoder's decoder) as a single step: every output step is the first",
                "reverse": "tract computes direction=reverse wrongly (measured 0.47 LSTM, 1.3 GRU scaled error; "
                "bidirectional is right)",
            },
            module="tract",
        ),
        RuntimeInfo(
            provider="reference",
            runtime="onnx-reference",
            runner="lstm_edge.runtimes.onnx_reference:OnnxReferenceRunner",
            summary="the ONNX reference evaluator in float64: the judge for models lstm-edge did not write",
            extra=None,
            distributions=("onnx",),
            fp32_drift_per_step=0.0,
            fp32_drift_reason="float64: its own rounding (~1e-16 relative per operation) is far below float32's "
            "(~6e-8), so a float32 runtime compared with it is measured by its own error within FP32_ABS",
            refusals={
                "activations, clip, input_forget": "onnx.reference ignores these attributes of a recurrent node, "
                "so the float64 reference refuses rather than computing it wrongly",
            },
            deployable=False,
        ),
        RuntimeInfo(
            provider="c",
            runtime="c",
            runner="lstm_edge.runtimes.c_runner:CRunner",
            summary="the bundle as generated C99, built with the system compiler and called through ctypes",
            extra=None,
            distributions=(),
            fp32_drift_per_step=0.0,
            fp32_drift_reason="the generated float32 C (its own exp/tanh, no libm; built with -ffp-contract=fast, "
            "fused multiply-adds on an FMA CPU): 1.4e-6 scaled on the shipped golden case (B=1, T=100, a random "
            "state; 6.0e-6 with -ffp-contract=off), where ORT CPU is 2.6e-6 and OpenVINO 5.4e-6; verify's 96 cases "
            "up to B=16, T=1000: 2.0e-6 (AMD EPYC, gcc 12)",
            refusals={
                "variants other than fp32 and int8": "the c runtime builds fp32 or int8 C from the bundle's model.onnx",
                "bare .onnx": "the c runtime needs a bundle (it generates C from model.onnx, the manifest and golden "
                "vectors)",
                "forms the C cannot express": "bidirectional, variable lengths, projection, … (codegen.weights.unsupported)",
            },
            probe=c_compiler_missing,
        ),
    )
}

# {trait: {runtime: why it rejects or miscomputes it}}, from the table: what lint and Runner read.
RUNTIME_LIMITS: dict[str, dict[str, str]] = {
    trait: {info.runtime: info.refusals[trait] for info in RUNTIMES.values() if trait in info.refusals}
    for trait in RECURRENT_TRAITS
    if any(trait in info.refusals for info in RUNTIMES.values())
}
# Where each trait runs correctly: the fix a refusal names.
RUNS_CORRECTLY = {
    "layout-1": "tract",
    "sequence-lens": "ONNX Runtime",
    "peephole": "ONNX Runtime and tract",
    "zero-state-free-batch": "ONNX Runtime or OpenVINO",
    "repeated-input": "ONNX Runtime or OpenVINO",
}
# Traits that `import --rebuild` (a plain LSTM stack re-exported clean) cannot take away: the fix names no rebuild.
NOT_FIXED_BY_REBUILD = {"repeated-input"}
