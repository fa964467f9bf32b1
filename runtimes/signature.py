"""What an ONNX graph declares it takes and returns, with the role each name plays — run by names, not positions.

A model lstm-edge wrote has inputs x, h0, c0 and outputs y, hn, cn. Other exporters use other names (ONNX's own
operator examples: X, initial_h, initial_c, sequence_lens; PyTorch users: input, hx, …) or carry inputs that play no
role at all (weights as graph inputs). Every input is fed by its own name; the roles x/h0/c0/lengths are recognised
by name where a known convention is followed, so a missing state can be zeros and a missing lengths the full T.
Every feed is checked against its declaration (rank, dtype, fixed dims, symbolic dims bound consistently) before a
runtime sees it, and every output against the symbolic dims the inputs bound, so a model whose time axis was frozen
by tracing cannot silently return fewer steps than it was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lstm_edge.errors import LstmEdgeError
from lstm_edge.onnx_io import RECURRENT_OPS, state_outputs, x_time_axis
from lstm_edge.runtimes.checks import check_steps

# Recognised names per role, compared case-insensitively (lstm-edge's own first; then ONNX operator input names,
# PyTorch argument names, and what torch.onnx / tf2onnx / keras2onnx users commonly write).
INPUT_ROLES = {
    "x": ("x", "input", "inputs", "features", "input_0", "x_input", "data"),
    "h0": ("h0", "initial_h", "h_0", "hx", "h", "state_h", "hidden", "h_in", "hidden_in", "h_init"),
    "c0": ("c0", "initial_c", "c_0", "cx", "c", "state_c", "cell", "c_in", "cell_in", "c_init"),
    "lengths": ("lengths", "seq_lens", "sequence_lens", "seq_len", "sequence_lengths", "lens", "length"),
}
OUTPUT_ROLES = {
    "y": ("y", "output", "outputs", "out", "logits", "y_out"),
    "hn": ("hn", "y_h", "h_n", "hy", "state_h_out", "h_out", "hidden_out"),
    "cn": ("cn", "y_c", "c_n", "cy", "state_c_out", "c_out", "cell_out"),
}
ONNX_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16}
ONNX_DTYPES[11] = np.float64


@dataclass
class Port:
    """One declared graph input or output: name, dims (int fixed, str symbolic, None unknown), numpy dtype, role."""

    name: str
    dims: list | None  # None: rank unknown
    dtype: np.dtype | None
    role: str | None = None

    def describe(self) -> str:
        """'name [d0, ?, d2] dtype' for messages; ? for a dimension (or a shape) left open."""
        dims = "?" if self.dims is None else "[" + ", ".join("?" if d is None else str(d) for d in self.dims) + "]"
        return f"{self.name} {dims} {np.dtype(self.dtype).name if self.dtype else ''}".strip()


@dataclass
class Signature:
    """The graph's inputs and outputs in declaration order, and where each role's name is (if anywhere).

    x_time: which axis of x is time (0 time-major, 1 batch-first); state_batch: which axis of h0/c0 is batch;
    seq_outputs: the outputs that may carry a time axis (every output but a final state), checked against x's T."""

    inputs: list[Port]
    outputs: list[Port]
    x_time: int = 1
    state_batch: int = 1
    notes: list[str] = field(default_factory=list)
    seq_outputs: tuple[str, ...] = ()

    @classmethod
    def from_model(cls, model) -> Signature:
        """Read from an onnx.ModelProto; initializers listed as inputs (old IR) are not inputs."""
        g = model.graph
        inits = {t.name for t in g.initializer}

        def port(vi) -> Port:
            t = vi.type.tensor_type
            dims = (
                [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
                if t.HasField("shape")
                else None
            )
            return Port(vi.name, dims, ONNX_DTYPES.get(t.elem_type))

        inputs = [port(i) for i in g.input if i.name not in inits]
        outputs = [port(o) for o in g.output]
        recurrent = [n for n in g.node if n.op_type in RECURRENT_OPS]
        # Roles from the recurrent nodes' own wiring first (input 0 X, 4 sequence_lens, 5 initial_h, 6 initial_c),
        # then from names.
        by_name = {p.name: p for p in inputs}
        for n in recurrent[:1]:
            for slot, role in ((0, "x"), (4, "lengths"), (5, "h0"), (6, "c0")):
                if len(n.input) > slot and n.input[slot] in by_name and by_name[n.input[slot]].role is None:
                    by_name[n.input[slot]].role = role
        _roles_by_name(inputs, INPUT_ROLES)
        _roles_by_name(outputs, OUTPUT_ROLES)
        if not any(p.role == "x" for p in inputs):
            floats = [p for p in inputs if p.role is None and p.dtype is not None and np.dtype(p.dtype).kind == "f"]
            rank3 = [p for p in floats if p.dims is not None and len(p.dims) == 3]
            if rank3 and len(floats) == len(rank3):  # only sequences and states: the first is x, as we export
                rank3[0].role = "x"
        sig = cls(inputs, outputs)
        x = sig.port("x")
        if x is not None:
            sig.x_time = x_time_axis(g, x.name)
        layout = next((a.i for n in recurrent for a in n.attribute if a.name == "layout"), 0)
        sig.state_batch = 0 if layout else 1
        carried = state_outputs(g, recurrent)  # [L·D, B, H]: their first axis is layers, not time
        batch = x.dims[1 - sig.x_time] if x is not None and x.dims and len(x.dims) == 3 else None
        sig.seq_outputs = tuple(
            p.name
            for p in outputs
            if p.name not in carried
            and p.role not in ("hn", "cn")
            and not (isinstance(batch, str) and p.dims and len(p.dims) > sig.x_time and p.dims[sig.x_time] == batch)
        )
        return sig

    def fixed_steps(self) -> tuple[str, int] | None:
        """(output, T) for the first output whose time axis is declared fixed while x's is free (a model traced or
        unrolled at that T), else None. Raises nothing."""
        x = self.port("x")
        if x is None or not x.dims or len(x.dims) <= self.x_time or isinstance(x.dims[self.x_time], int):
            return None
        for p in self.outputs:
            if p.name in self.seq_outputs and p.dims and len(p.dims) >= 3 and isinstance(p.dims[self.x_time], int):
                return p.name, p.dims[self.x_time]
        return None

    def port(self, role: str) -> Port | None:
        """The input or output playing `role` (x, h0, c0, lengths, y, hn, cn), or None when none does."""
        return next((p for p in (*self.inputs, *self.outputs) if p.role == role), None)

    @property
    def stateful(self) -> bool:
        """The state is a graph input and comes back as an output: it can be carried between calls."""
        return self.port("h0") is not None and self.port("hn") is not None

    # ---- feeds ------------------------------------------------------------------------------------------------
    def bind(self, given: dict[str, np.ndarray], allow_nonfinite: bool = False) -> dict[str, np.ndarray]:
        """Feeds for every declared input, checked against its declaration: rank, dtype, fixed dims, and each
        symbolic dim bound to one value across inputs. A state input not given becomes zeros, a lengths input the
        full T. Raises LstmEdgeError (one line) naming an unknown, missing or mismatched input."""
        declared = {p.name: p for p in self.inputs}
        unknown = [k for k in given if k not in declared]
        if unknown:
            raise LstmEdgeError(
                f"the model has no input {unknown[0]!r}",
                f"its inputs are {', '.join(p.describe() for p in self.inputs)}",
            )
        feeds = {k: _as_declared(declared[k], v) for k, v in given.items()}
        x = self.port("x")
        xa = feeds.get(x.name) if x is not None else None
        for p in self.inputs:
            if p.name in feeds:
                continue
            if p.role in ("h0", "c0") and xa is not None:
                feeds[p.name] = self._zero_state(p, xa)
            elif p.role == "lengths" and xa is not None and xa.ndim == 3:
                feeds[p.name] = np.full(xa.shape[1 - self.x_time], xa.shape[self.x_time], p.dtype or np.int64)
            else:
                raise LstmEdgeError(
                    f"the model needs input {p.describe()}, which was not given",
                    f"pass it in the .npz (np.savez(f, {p.name}=…)) or as --input-name {p.name}=FILE.npy",
                )
        bound: dict[str, tuple[int, str]] = {}
        for p in self.inputs:
            a = feeds[p.name]
            if p.dims is None:
                continue
            if a.ndim != len(p.dims):
                raise LstmEdgeError(
                    f"{p.name} has rank {a.ndim} (shape {a.shape}); the model declares {p.describe()}",
                    "reshape the input to the declared rank",
                )
            for k, (want, got) in enumerate(zip(p.dims, a.shape, strict=True)):
                if isinstance(want, int) and want > 0 and want != got:
                    raise LstmEdgeError(self._fixed_dim(p, k, want, got, feeds), self._fixed_fix(p, k))
                if isinstance(want, str):
                    if want in bound and bound[want][0] != got:
                        first, where = bound[want]
                        raise LstmEdgeError(
                            f"{p.name} has {want}={got} on axis {k}, but {where} has {want}={first}",
                            "give every input the same value for a shared axis",
                        )
                    bound.setdefault(want, (got, p.name))
            if a.size == 0:
                raise LstmEdgeError(f"{p.name} is empty (shape {a.shape})", "give at least one step and one sequence")
            if not allow_nonfinite and a.dtype.kind == "f":
                bad = ~np.isfinite(a)
                if bad.any():
                    pos = tuple(int(i) for i in np.argwhere(bad)[0])
                    raise LstmEdgeError(
                        f"{p.name} holds {a[pos]} at index {pos}", "clean the input, or pass --allow-nonfinite"
                    )
        return feeds

    def _zero_state(self, p: Port, x: np.ndarray) -> np.ndarray:
        if p.dims is None or len(p.dims) != 3 or x.ndim != 3:
            raise LstmEdgeError(f"the model's state {p.describe()} has no declared shape", f"pass {p.name} explicitly")
        batch = x.shape[1 - self.x_time]
        shape = []
        for k, d in enumerate(p.dims):
            if k == self.state_batch:
                shape.append(batch)  # a fixed batch that differs is reported by bind's fixed-dim check
            elif isinstance(d, int) and d > 0:
                shape.append(d)
            else:
                raise LstmEdgeError(
                    f"the model's state {p.describe()} does not declare its size on axis {k}",
                    f"pass {p.name} explicitly",
                )
        return np.zeros(shape, p.dtype or np.float32)

    def _fixed_dim(self, p: Port, k: int, want: int, got: int, feeds: dict) -> str:
        x = self.port("x")
        if p.role in ("h0", "c0") and k == self.state_batch and x is not None and x.name in feeds:
            return f"{p.name} has batch fixed at {want}; {x.name} has batch {feeds[x.name].shape[1 - self.x_time]}"
        if p.role == "x" and k == self.x_time:
            return f"the model's time axis is fixed at {want}; {p.name} has {got} steps"
        if p.role == "x" and k == 1 - self.x_time:
            return f"{p.name} has batch fixed at {want}; got batch {got}"
        return f"{p.name} has axis {k} fixed at {want}; got {got} (shape {feeds[p.name].shape})"

    def _fixed_fix(self, p: Port, k: int) -> str:
        if p.role in ("h0", "c0", "x") and k in (self.state_batch, 1 - self.x_time):
            return "run with that batch, or re-export with a dynamic batch axis (lstm-edge lint names it)"
        if p.role == "x" and p.dims is not None and k == len(p.dims) - 1:
            return "give x with that many features on its last axis (the model's input size)"
        if p.role == "x":
            return "run with that many steps, or re-export with a dynamic time axis (lstm-edge import MODEL.onnx --out BUNDLE --rebuild)"
        return "give the declared shape"

    # ---- outputs -------------------------------------------------------------------------------------------
    def check_outputs(self, feeds: dict[str, np.ndarray], outs: dict[str, np.ndarray]) -> None:
        """Every output's symbolic dims against the values the inputs bound. Raises LstmEdgeError when an output
        disagrees — above all a time axis fixed by tracing: 'y has 6 steps where x has 9'."""
        bound: dict[str, tuple[int, str, int]] = {}
        for p in self.inputs:
            for k, d in enumerate(p.dims or []):
                if isinstance(d, str) and p.name in feeds:
                    bound.setdefault(d, (feeds[p.name].shape[k], p.name, k))
        x = self.port("x")
        for o in self.outputs:
            a = outs.get(o.name)
            if a is None or o.dims is None or a.ndim != len(o.dims):
                continue
            for k, d in enumerate(o.dims):
                if not isinstance(d, str) or d not in bound or a.shape[k] == bound[d][0]:
                    continue
                want, src, axis = bound[d]
                if x is not None and src == x.name and axis == self.x_time:
                    raise LstmEdgeError(
                        f"{o.name} has {a.shape[k]} steps where {src} has {want}: the model's time axis is fixed "
                        f"at {a.shape[k]} (it was traced, or unrolled, at that length)",
                        f"run it at T={a.shape[k]}, or re-export it with a dynamic time axis (lstm-edge lint)",
                    )
                raise LstmEdgeError(
                    f"{o.name} has {d}={a.shape[k]} on axis {k} where {src} has {d}={want}: the declared shapes lie",
                    "re-export the model; lstm-edge lint names the frozen axis",
                )
        xa = feeds.get(x.name) if x is not None else None
        if xa is not None and xa.ndim == 3:  # the time axis of every output but a state, declared or not
            for name in self.seq_outputs:
                if name in outs:
                    check_steps(name, outs[name], self.x_time, xa.shape[self.x_time], x.name)


def _roles_by_name(ports: list[Port], table: dict[str, tuple[str, ...]]) -> None:
    taken = {p.role for p in ports if p.role}
    for role, names in table.items():
        if role in taken:
            continue
        for p in ports:
            if p.role is None and p.name.lower() in names:
                p.role = role
                taken.add(role)
                break


def _as_declared(p: Port, a) -> np.ndarray:
    """The array in the declared dtype: float→float and int→int (values kept) convert; across kinds is an error."""
    a = np.asarray(a)
    if p.dtype is None:
        return np.ascontiguousarray(a)
    want = np.dtype(p.dtype)
    if a.dtype == want:
        return np.ascontiguousarray(a)
    if want.kind == "f" and a.dtype.kind == "f":
        with np.errstate(over="ignore"):  # beyond float32's range becomes inf, which the finite check names
            return np.ascontiguousarray(a, dtype=want)
    if want.kind in "iu" and a.dtype.kind in "iu":
        info = np.iinfo(want)
        if a.size and (a.min() < info.min or a.max() > info.max):
            raise LstmEdgeError(f"{p.name} holds values outside {want.name}", f"the model declares {p.describe()}")
        return np.ascontiguousarray(a, dtype=want)
    raise LstmEdgeError(
        f"{p.name} has dtype {a.dtype}; the model declares {p.describe()}",
        "give float values for float inputs and integers for integer inputs",
    )
