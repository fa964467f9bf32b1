"""Streaming: one step (or a chunk) at a time over a runner, with state that can be read, set, frozen and restored.

Stream serves the seed's (x, h0, c0) form over fixed buffers (a runner's `bind_step`); SpecStream every other
unidirectional ModelSpec form through named feeds (`Runner.infer`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lstm_edge.errors import LstmEdgeError
from lstm_edge.runtimes.checks import SMALL_SAMPLE, check_feeds, check_state, check_steps, check_x

if TYPE_CHECKING:  # typing only: base imports this module to build streams
    from lstm_edge.runtimes.base import Runner


@dataclass
class Binding:
    """What `Runner.bind_step` returns: one step over fixed buffers.

    step(k): run the stream's x buffer from state pair k into pair 1 - k; return that step's y (a fresh array).
    pull(k) / push(k): for state kept on a device, copy pair k device → host / host → device; None when the
    host buffers are the state (ORT CPU and OpenVINO bind them directly).
    """

    step: Callable[[int], np.ndarray]
    pull: Callable[[int], None] | None = None
    push: Callable[[int], None] | None = None


class Stream:
    """Stateful one-step-at-a-time runner: step(x_t) → that step's y; state can be read, set, frozen, restored.

    The state lives in two (h, c) pairs of [L, B, H] buffers; pair `_cur` is current. Where the runner binds a
    step (`Runner.bind_step`), a one-step call is one copy of x_t in, the bound run, and a flip of `_cur`;
    otherwise, and for chunks of K > 1 steps, the runner's `run_chunk` runs from the current pair. Every input goes
    through the same checks as `Runner.run` (check_x / check_state) first.
    """

    def __init__(self, runner: Runner, batch: int = 1) -> None:
        self.runner = runner
        self.batch = batch
        s = runner.source
        self.state_shape = (s.num_layers, batch, s.hidden_size)  # (L, B, H) of h and of c
        self._F = s.input_size
        self._finite = not runner.options.allow_nonfinite
        dt = runner.state_dtype
        self._pairs = tuple((np.zeros(self.state_shape, dt), np.zeros(self.state_shape, dt)) for _ in range(2))
        self._cur = 0
        self._x = np.zeros((batch, 1, s.input_size or 0), np.float32)
        self._bound = runner.bind_step(self._x, self._pairs) if s.input_size else None
        # The hot path's test: a float32 sample already shaped [B, F] (or [F] for batch 1) needs no conversion.
        # Above SMALL_SAMPLE values the checks are small against the step itself, and check_x's numpy path is faster.
        small = self._x.size <= SMALL_SAMPLE
        self._sample_shapes = {(batch, s.input_size), *([(s.input_size,)] if batch == 1 else [])} if small else set()
        self._x2d = self._x.reshape(batch, -1)  # views of the bound input buffer
        self._x1d = self._x.reshape(-1)

    def step(self, x_t: np.ndarray) -> np.ndarray:
        """Advance by one step (or a chunk) and return its output.

        Args:
            x_t: one step's features, [F] (batch 1) or [B, F]; or a chunk of K steps, [B, K, F]. A float dtype,
                converted to float32, in the units `run` takes.

        Returns:
            y for that step, [B, O] (last-step head) or [B, 1, O] (sequence head); for a chunk, y after its last
            step ([B, O]) or for every step ([B, K, O]).

        Raises:
            LstmEdgeError: as `Runner.run` for x (dtype, feature count, NaN/Inf), or a batch other than the
                stream's; the state is unchanged then.
        """
        x = np.asarray(x_t)
        if self._bound is not None and x.dtype == np.float32 and x.shape in self._sample_shapes:
            # The streaming hot path, same rules as check_x with fewer calls: measured here, check_x on the
            # reshaped sample added ~5 µs to a ~30 µs ORT step, this ~1 µs. Anything else takes the general path.
            np.copyto(self._x2d, x)
            if self._finite and not math.isfinite(sum(self._x1d.tolist())):  # as _all_finite, one call fewer
                check_x(self._x.copy(), self._F, True, self.batch, "x_t")  # raises, naming the index
            y = self._bound.step(self._cur)
            self._cur ^= 1
            return y
        if x.ndim == 1:
            x = x[None, None, :]
        elif x.ndim == 2:
            x = x[:, None, :]
        elif x.ndim != 3:
            raise LstmEdgeError(
                f"x_t has rank {x.ndim} (shape {x.shape})",
                "give one step as [features] or [batch, features], or a chunk as [batch, steps, features]",
            )
        x = check_x(x, self._F, self._finite, self.batch, "x_t")
        if self._bound is not None and x.shape[1] == 1:
            np.copyto(self._x, x)
            y = self._bound.step(self._cur)
            self._cur ^= 1
            return y
        return self._advance(x)

    def feed(self, x: np.ndarray, chunk: int = 1) -> np.ndarray:
        """Stream x [B, T, F] through `step` in chunks of `chunk` steps, as a device would, from the current state.

        Returns:
            [B, T, O] (every step's y, concatenated) for a sequence head, else the y after the last step, [B, O] —
            what `run` returns for the same x and starting state. The stream's state is then the final state.

        Raises:
            LstmEdgeError: chunk < 1, or as `step` (x is checked whole, before any step runs).
        """
        if chunk < 1:
            raise LstmEdgeError(f"chunk {chunk}", "use a chunk of at least 1 step")
        x = check_x(x, self._F, self._finite, self.batch)
        ys = [self.step(x[:, t : t + chunk]) for t in range(0, x.shape[1], chunk)]
        return np.concatenate(ys, axis=1) if ys[0].ndim == 3 else ys[-1]

    def reset(self) -> None:
        """Back to zero state (the start of a new sequence)."""
        for a in self._pairs[self._cur]:
            a.fill(0.0)
        if self._bound is not None and self._bound.push:
            self._bound.push(self._cur)

    @property
    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """(h, c), each [L, B, H], copies that later steps do not change. Setting it takes the same shapes, with
        `Runner.run`'s checks on dtype, shape and finiteness (LstmEdgeError)."""
        if self._bound is not None and self._bound.pull:
            self._bound.pull(self._cur)
        h, c = self._pairs[self._cur]
        return h.copy(), c.copy()

    @state.setter
    def state(self, value: tuple[np.ndarray, np.ndarray]) -> None:
        """Set (h, c) with `Runner.run`'s checks; raises LstmEdgeError for a wrong count, dtype, shape or value."""
        if not isinstance(value, tuple | list) or len(value) != 2:
            raise LstmEdgeError("state must be a pair (h, c)", "use a state read from a stream, or give both arrays")
        dt = self.runner.state_dtype
        h, c = (check_state(n, a, self.state_shape, self._finite, dt) for n, a in zip(("h", "c"), value, strict=True))
        pair = self._pairs[self._cur]
        np.copyto(pair[0], h)
        np.copyto(pair[1], c)
        if self._bound is not None and self._bound.push:
            self._bound.push(self._cur)

    def freeze(self) -> tuple[np.ndarray, np.ndarray]:
        """A snapshot of (h, c) that later steps do not change (tract's State.freeze)."""
        return self.state

    def unfreeze(self, snapshot: tuple[np.ndarray, np.ndarray]) -> None:
        """Restore a snapshot from `freeze` (checked like the `state` setter; raises LstmEdgeError)."""
        self.state = snapshot

    def _advance(self, x: np.ndarray) -> np.ndarray:
        """Run a checked x [B, K, F] through the runner's `run_chunk` from the current pair, leaving the state there."""
        b, cur = self._bound, self._cur
        if b is not None and b.pull:
            b.pull(cur)
        h, c = self._pairs[cur]
        y, h_new, c_new = self.runner.run_chunk(x, h, c)
        check_steps("y", y, 1, x.shape[1], "x_t")  # before the state moves on
        np.copyto(h, h_new)
        np.copyto(c, c_new)
        if b is not None and b.push:
            b.push(cur)
        return y


class SpecStream:
    """Streaming for every unidirectional ModelSpec form but the seed's (GRU, time-major, token ids, lengths,
    projection): step(x_t) → that step's y, carrying the state tuple ((h, c) for an LSTM, (h,) for a GRU).

    x_t: one step — [B, F] features or [B] token ids (or [F] / a scalar id for batch 1) — or a chunk in the
    model's layout ([B, K, F] / [K, B, F]; ids [B, K] / [K, B]). Each step feeds lengths = its chunk length. No
    bound buffers: one `Runner.infer` call a step.
    """

    def __init__(self, runner: Runner, batch: int = 1) -> None:
        self.runner, self.batch = runner, batch
        self.config = c = runner.source.config
        self._finite = not runner.options.allow_nonfinite
        dt = runner.state_dtype
        self._state = tuple(np.zeros((rows, batch, width), dt) for rows, width in c.state_shapes.values())

    def _chunk(self, x_t) -> np.ndarray:
        c, x = self.config, np.asarray(x_t)
        step_rank = 1 if c.vocab_size else 2  # one step: [B] ids or [B, F] features
        if x.ndim == step_rank - 1:  # batch 1: a scalar id or [F]
            x = x[None]
        if x.ndim == step_rank:
            x = x[:, None] if c.batch_first else x[None]
        return x

    def step(self, x_t) -> np.ndarray:
        """Advance by one step (or a chunk) and return its y ([B, O] for heads last/final; per step [B, 1, O] or
        [1, B, O] for sequence/none). Raises LstmEdgeError as `Runner.run`; the state is unchanged then."""
        feeds = check_feeds(self.config, self._chunk(x_t), self._state, None, self._finite, self.runner.state_dtype,
                            self.batch)  # fmt: skip
        outs = self.runner.infer(feeds)
        t = 1 if self.config.batch_first else 0
        check_steps("y", outs[0], t, feeds["x"].shape[t], "x_t")  # before the state moves on
        self._state = tuple(np.ascontiguousarray(a, dtype=self.runner.state_dtype) for a in outs[1:])
        return outs[0]

    def feed(self, x: np.ndarray, chunk: int = 1) -> np.ndarray:
        """Stream a whole x (the model's layout) in chunks of `chunk` steps; returns what `run` would.

        Raises:
            LstmEdgeError: chunk < 1, x with no steps, or as `step`.
        """
        if chunk < 1:
            raise LstmEdgeError(f"chunk {chunk}", "use a chunk of at least 1 step")
        x = np.asarray(x)
        axis = 1 if self.config.batch_first else 0
        T = x.shape[axis] if x.ndim > axis else 0
        ys = [self.step(np.take(x, range(t, min(t + chunk, T)), axis=axis)) for t in range(0, T, chunk)]
        if not ys:
            raise LstmEdgeError("x has no steps", "give at least one step")
        per_step = self.config.head in ("sequence", "none")
        return np.concatenate(ys, axis=1 if self.config.batch_first else 0) if per_step else ys[-1]

    def reset(self) -> None:
        """Back to zero state."""
        for a in self._state:
            a.fill(0.0)

    @property
    def state(self) -> tuple[np.ndarray, ...]:
        """The state tuple ((h, c) or (h,)), copies; setting it checks count, shapes and values."""
        return tuple(a.copy() for a in self._state)

    @state.setter
    def state(self, value) -> None:
        """Set the state tuple; raises LstmEdgeError for a wrong count, dtype, shape or a non-finite value."""
        shapes = [a.shape for a in self._state]
        names = list(self.config.state_shapes)
        if not isinstance(value, tuple | list) or len(value) != len(shapes):
            raise LstmEdgeError(
                f"state must be {len(shapes)} array(s) ({', '.join(names)})", "use a state read from this stream"
            )
        dt = self.runner.state_dtype
        self._state = tuple(
            check_state(n, a, shape, self._finite, dt).copy() for n, a, shape in zip(names, value, shapes, strict=True)
        )

    def freeze(self) -> tuple[np.ndarray, ...]:
        """A snapshot of the state that later steps do not change."""
        return self.state

    def unfreeze(self, snapshot) -> None:
        """Restore a snapshot from `freeze`."""
        self.state = snapshot
