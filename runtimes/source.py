"""What a runner opens: a bundle's artifact or a bare .onnx, resolved to a Source with its declared names, sizes
and the recurrent-node traits some runtimes refuse."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from lstm_edge.bundle import MANIFEST, Bundle
from lstm_edge.config import INPUT_NAMES, OUTPUT_NAMES, ModelConfig, is_seed_form
from lstm_edge.errors import LstmEdgeError
from lstm_edge.onnx_io import load_onnx_checked, read_onnx_io, recurrent_traits
from lstm_edge.runtimes.graph_facts import graph_facts

if TYPE_CHECKING:  # typing only: a bundle never needs the bare-.onnx signature reader
    from lstm_edge.runtimes.signature import Signature


@dataclass
class Source:
    """What a runner opens: a bundle's artifact, or a bare .onnx file with its declared names."""

    path: Path  # the .onnx (or, for torch, the checkpoint)
    bundle: Bundle | None
    variant: str
    precision: str
    input_names: list[str] = field(default_factory=lambda: list(INPUT_NAMES))
    output_names: list[str] = field(default_factory=lambda: list(OUTPUT_NAMES))
    input_size: int | None = None
    num_layers: int | None = None
    hidden_size: int | None = None
    # A bare .onnx: its declared inputs/outputs with their roles, fed by name (runtimes.signature).
    signature: Signature | None = None
    # Recurrent-node features some runtimes reject or miscompute (onnx_io.recurrent_traits): {trait: [nodes]}.
    traits: dict[str, list[str]] = field(default_factory=dict)

    @cached_property
    def config(self) -> ModelConfig | None:
        """The bundle's ModelConfig, or None for a bare .onnx. Built once: Bundle.config builds it anew from the
        manifest on each read (~15 µs), and run/step read it on every call."""
        return self.bundle.config if self.bundle else None

    @property
    def has_state(self) -> bool:
        """Whether the graph takes and returns its state ((h, c) for an LSTM, h for a GRU bundle), i.e. can stream."""
        if self.config is not None:
            return True
        return len(self.input_names) >= 3 and len(self.output_names) >= 3

    @cached_property
    def spec_form(self) -> bool:
        """A bundle in any form but the seed's (GRU, bidirectional, time-major, tokens, lengths, projection): run
        and stream go through named feeds (`Runner.infer`) instead of the seed's (x, h0, c0) fast path."""
        return self.config is not None and not (
            is_seed_form(self.config) and self.config.state_size == self.hidden_size
        )


def resolve(path: str | Path, variant: str = "fp32", verify_hash: bool = True) -> Source:
    """What a runner opens: a bundle folder (choosing a variant; "checkpoint" for the torch runner) or a bare .onnx.

    Args:
        path: a bundle folder, its manifest.json, or a .onnx file.
        variant: fp32 | int8 | int8-static | fp16 (bundle.VARIANT_TABLE); a bare .onnx is fp32 only.
        verify_hash: check the artifact's sha256 against the manifest before anything reads it.

    Returns:
        A Source: the file, its declared I/O names, and F / L / H where known.

    Raises:
        LstmEdgeError: nothing at path, not a bundle or .onnx, an unknown or missing variant, a hash mismatch,
            or external data that points outside the bundle.
    """
    path = Path(path)
    if path.is_dir() or path.name == MANIFEST:
        bundle = Bundle.open(path)
        onnx_path = bundle.artifact(variant, verify_hash) if variant != "checkpoint" else bundle.checkpoint(verify_hash)
        c = bundle.config
        traits = {}
        if onnx_path.suffix == ".onnx":  # read once per content: the sha256 just verified keys the cache
            facts = graph_facts(onnx_path, bundle.entry(variant)["sha256"] if verify_hash else None)
            _check_declared(onnx_path, facts.inputs, c)
            traits = facts.traits
        precision = bundle.entry(variant).get("precision", variant)
        io = bundle.manifest.get("io")  # an imported or fallback-exported stateless model takes x alone
        return Source(
            onnx_path,
            bundle,
            variant,
            precision,
            input_names=_io_names(io, "inputs", c.input_names),
            output_names=_io_names(io, "outputs", c.output_names),
            input_size=c.input_size,
            num_layers=c.num_layers,
            hidden_size=c.hidden_size,
            traits=traits,
        )
    if not path.exists():
        raise LstmEdgeError(f"model not found: {path}", "pass a bundle folder or a .onnx file")
    if path.suffix != ".onnx":
        raise LstmEdgeError(f"{path} is neither a bundle folder nor a .onnx file", "export it first: lstm-edge export")
    if variant != "fp32":
        raise LstmEdgeError(f"--variant {variant} needs a bundle; a bare .onnx is run as it is", "drop --variant")
    return _bare_onnx(path)


def _io_names(io, key: str, default: tuple[str, ...]) -> list[str]:
    """Names from the manifest's I/O spec (bundles before it, or a malformed one: the config's contract)."""
    items = io.get(key) if isinstance(io, dict) else None
    names = [i.get("name") for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    return names if names and all(isinstance(n, str) for n in names) else list(default)


def _check_declared(path: Path, inputs: dict[str, list], c: ModelConfig) -> None:
    """The manifest's config must describe the graph it ships: F on x's last axis, (L·D, width) on each state
    input. A mismatch made ORT fail mid-run with a traceback; here it is one line before any run."""
    want = {"x": {-1: c.input_size}, **{n: {0: s[0], 2: s[1]} for n, s in c.state_shapes.items()}}
    for name, axes in want.items():
        dims = inputs.get(name)
        for axis, size in axes.items():
            got = dims[axis] if dims and len(dims) > max(axis, -axis - 1) else None
            if isinstance(got, int) and got != size:
                raise LstmEdgeError(
                    f"the manifest's config disagrees with {path.name}: it implies {name} axis {axis % 3} = {size}, "
                    f"the graph declares {got} (input_size {c.input_size}, hidden_size {c.hidden_size}, "
                    f"num_layers {c.num_layers})",
                    "re-export the bundle",
                )


def _bare_onnx(path: Path) -> Source:
    """A .onnx without a manifest: every declared input and output by name, with the roles runtimes.signature
    recognises; input_names in role order (x, h0, c0) where the model follows that contract."""
    from lstm_edge.runtimes.signature import Signature  # deferred: ~2 ms a bundle's open does not need

    model = load_onnx_checked(path)
    read_onnx_io(path, model)  # refuses a fixed dim over limits.MAX_MODEL_DIM before anything is allocated
    sig = Signature.from_model(model)
    if not sig.inputs:
        raise LstmEdgeError(f"{path} declares no inputs", "re-export the model")
    roles = [sig.port(r) for r in ("x", "h0", "c0")]
    outs = [sig.port(r) for r in ("y", "hn", "cn")]
    ordered = all(roles) and all(outs) and len(sig.inputs) == 3
    x, h0 = roles[0], roles[1]
    dims = lambda d: d if isinstance(d, int) and d > 0 else None  # noqa: E731
    return Source(
        path,
        None,
        "fp32",
        "fp32",
        input_names=[p.name for p in roles] if ordered else [p.name for p in sig.inputs],
        output_names=[p.name for p in outs] if ordered else [p.name for p in sig.outputs],
        input_size=dims(x.dims[-1]) if x is not None and x.dims else None,
        num_layers=dims(h0.dims[0]) if h0 is not None and h0.dims and len(h0.dims) == 3 else None,
        hidden_size=dims(h0.dims[2]) if h0 is not None and h0.dims and len(h0.dims) == 3 else None,
        signature=sig,
        traits=recurrent_traits(model),
    )
