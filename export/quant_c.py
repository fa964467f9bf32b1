"""The int8 C's own error profile, recorded beside ORT's on the int8 variant (QuantizeReport.c_error_profile).

The `c` runtime serves the variant name int8 with its own scheme (lstm_edge.codegen: int8 weights and recurrence,
int16 h), not with ORT's model.int8.onnx, so ORT's recorded bound does not describe it. For a GRU the two differ by
orders of magnitude: ORT has no int8 GRU kernel, its int8 quantizes the head alone and records ~1e-7, where the int8
C's recurrence is ~1e-3 from float64 (measured on tests/test_codegen_gru.py's Kws). quantize measures the C with the
same probes and the same code as ORT's variant: its bit-exact simulation (codegen.simulate_int8, equal to the C to
the last bit) stands behind ORT's session interface, so error_growth cannot tell them apart.

The streamed probe is left out for the C: one call per step equals one call for the whole sequence bit for bit (h
leaves as h_q / 32767 and re-enters as the same int16, c as the same float32; tests/test_codegen_gru.py holds it on
a GRU and the shipped LSTM), and the simulation's cost is per step: tests/test_codegen_gru.py's Kws GRU took 5.4 s
of CPU with the streamed probe, 3.7 s without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lstm_edge.bundle import Bundle
from lstm_edge.codegen import int8_scheme, simulate_int8
from lstm_edge.config import ModelConfig
from lstm_edge.errors import LstmEdgeError


@dataclass(frozen=True)
class _Input:
    """What ORT's NodeArg says of an input and error_growth reads: its name."""

    name: str


class CInt8Session:
    """The int8 C as a session: run(names, feeds) → its outputs in `names` order, from the bit-exact simulation.

    feeds: x [B, T, F] float32 (token ids [B, T] int64 for a token model), h0 and for an LSTM c0 [L, B, H] float32,
    by the bundle's input names. A call starts from the state it is fed, as the c runtime's calls do: h enters as
    q16(h · 32767) and leaves as h_q / 32767, which round-trip to the same int16, so one call per step equals one
    call for the whole sequence.
    """

    def __init__(self, params, embedding: np.ndarray | None, config: ModelConfig):
        self.params, self.embedding = params, embedding
        self.input_names, self.output_names = tuple(config.input_names), tuple(config.output_names)

    def get_inputs(self) -> list[_Input]:
        """The inputs it takes, as ORT lists them (quant_measure.takes reads their names)."""
        return [_Input(n) for n in self.input_names]

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The simulated C's outputs named in `names` (y, hn and for an LSTM cn) for `feeds`."""
        x, h0 = (np.ascontiguousarray(feeds[n]) for n in self.input_names[:2])
        c0 = np.ascontiguousarray(feeds[self.input_names[2]]) if len(self.input_names) > 2 else None
        got = dict(zip(self.output_names, simulate_int8(self.params, x, h0, c0, self.embedding), strict=False))
        return [got[n] for n in names]


def c_int8_session(bundle: Bundle, int8_settings: dict | None) -> CInt8Session | None:
    """The int8 C of `bundle` as a CInt8Session, with the input range the C will be built with (`int8_settings`: the
    int8 variant's report settings, not yet in the manifest); None for a model the C cannot express (the c runtime
    refuses it in its own line, so it needs no bound)."""
    try:
        params, weights = int8_scheme(bundle, int8_settings, verify_hash=False)  # quantize checked the fp32 graph
    except LstmEdgeError:  # bidirectional, lengths, projection, no Linear head…: codegen.weights.read_weights says
        return None
    return CInt8Session(params, weights.embedding, bundle.config)


def c_error_profile(bundle: Bundle, int8_settings: dict, growth) -> dict[str, dict[str, float]]:
    """The int8 C's error profile: per T (quant_measure.ERROR_VS_T), per output, its max scaled error
    |Δ| / max(1, |ref|) against the variant's reference (float64 where ORT's profile is), measured by `growth` — the
    error_growth that measured ORT's variant, bound to its probes: session → (max |Δ| against fp32, profile). {} for
    a model the C cannot express. Raises what `growth` raises."""
    session = c_int8_session(bundle, int8_settings)
    if session is None:
        return {}
    # One torch thread: the simulation is a few small ops per step, which a second thread only slows down — the
    # shipped model's 16 sequences of T=1000 took 22.6 s of CPU with torch's default 2 threads, 2.8 s with one
    # (2-core machine at load ~7).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return growth(session)[1]
    finally:
        torch.set_num_threads(threads)
