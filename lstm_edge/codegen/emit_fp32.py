"""fp32 C: float32 weights stored transposed in panels, the gate products panel GEMMs, Cephes' exp/tanh in plain
arithmetic (no libm), and NAME_run_batch (lstm_edge.codegen.batch_fp32) beside NAME_step / NAME_run.

Gate matrices are stored transposed (K × 4H, row j holds input j's weight for every gate row) so the gate product is
an axpy over contiguous gate rows: independent lanes, which compilers vectorize at -O3 without reassociating a float
sum (a dot-product loop would need -ffast-math). Stored in panels of 32 gate columns (lstm_edge.codegen.gemm_fp32),
one kernel serves one row (the step) and many (the batched run), keeping 4 rows × 32 accumulators in registers.
"""

from __future__ import annotations

from lstm_edge.codegen.batch_fp32 import batch_source, scratch_macro
from lstm_edge.codegen.c_literals import c_array
from lstm_edge.codegen.gemm_fp32 import kernels, pack
from lstm_edge.codegen.gru import fp32_cell, fp32_layer
from lstm_edge.codegen.scaffold import LibraryParts, Precision, is_gru, library_source
from lstm_edge.codegen.weights import ModelWeights
from lstm_edge.tolerances import FP32_ABS


def _kernels(H: int, gru: bool) -> str:
    """gates_row / gates_gemm (panel kernels, gemm_fp32), exp_nonpos, sigmoid_f, tanh_f and cell() (a GRU's:
    gru_cell, lstm_edge.codegen.gru): the float32 gate math."""
    if gru:
        return kernels(3 * H) + "\n" + _activations(H).split(CELL_COMMENT)[0] + fp32_cell(H)
    return kernels(4 * H) + "\n" + _activations(H)


CELL_COMMENT = "/* i = s(z_i), f = s(z_f)"  # where the LSTM's cell() begins in _activations' text


def _activations(H: int) -> str:
    """exp_nonpos, sigmoid_f, tanh_f (Cephes' polynomials, no libm) and cell(), the LSTM update over H units."""
    return f"""/* e^z for z <= 0 (its only use: e^-|z|), Cephes' expf: z = n ln2 + r, e^r by a degree-6 polynomial, 2^n put in the
 * exponent bits. ~1 ulp, like libm's expf, but plain arithmetic, so compilers vectorize the gate loop with it
 * (a libm call per gate kept the adding model's step ~2x slower). Below -87, e^z is clamped at e^-87 (1.6e-38). */
static float exp_nonpos(float z)
{{
    union {{
        float f;
        int32_t i;
    }} t, two_n;
    float n, r, p;
    z = z < -87.0f ? -87.0f : z;
    /* + 1.5 * 2^23 rounds z / ln2 to an integer held in the low mantissa bits: no float-to-int conversion */
    t.f = z * 1.44269504088896341f + 12582912.0f;
    n = t.f - 12582912.0f;
    r = z - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    two_n.i = (t.i - 0x4B400000 + 127) * 8388608; /* 2^n: n + 127 in the exponent bits */
    return p * two_n.f;
}}

/* sigma(z) from e = e^-|z| <= 1: sigma(-|z|) = e / (1 + e), and 1 minus that for z >= 0. The textbook
 * 1 / (1 + exp(-z)) rounds 1 + e away from the forget gate's distance to 1, and over 1000 steps of a cell state
 * near 64 that drifted 2.1e-5 from the float64 reference (this form: 2.6e-6). */
static float sigmoid_f(float z)
{{
    const float e = exp_nonpos(z < 0.0f ? z : -z);
    const float s = e / (1.0f + e);
    return z < 0.0f ? s : 1.0f - s;
}}

/* tanh(x), Cephes' tanhf: an odd polynomial below |x| = 0.625, else 1 - 2e / (1 + e) with e = e^-2|x|; sign restored */
static float tanh_f(float x)
{{
    const float a = x < 0.0f ? -x : x, z = a * a;
    const float e = exp_nonpos(-2.0f * a);
    const float big = 1.0f - 2.0f * e / (1.0f + e);
    float p = -5.70498872745e-3f;
    float t;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    t = a < 0.625f ? a + a * z * p : big;
    return x < 0.0f ? -t : t;
}}

/* i = s(z_i), f = s(z_f), o = s(z_o); C = f*C + i*tanh(z_c); h = o*tanh(C) */
static void cell(float *restrict h, float *restrict c, const float *restrict z)
{{
    int j;
    for (j = 0; j < {H}; ++j) {{
        const float i = sigmoid_f(z[j]), f = sigmoid_f(z[{H} + j]);
        const float g = tanh_f(z[{2 * H} + j]), o = sigmoid_f(z[{3 * H} + j]);
        c[j] = f * c[j] + i * g;
        h[j] = o * tanh_f(c[j]);
    }}
}}
"""


def _layer(k: int, K: int, H: int) -> str:
    """layerK: z = b + in · W_x^T + h · W_h^T (gates_row), then the cell update in place."""
    return f"""static void layer{k}(float h[{H}], float c[{H}], const float in[{K}])
{{
    float z[G];
    int r;
    for (r = 0; r < G; ++r)
        z[r] = L{k}_B[r];
    gates_row(z, in, L{k}_WX, {K});
    gates_row(z, h, L{k}_WH, {H});
    cell(h, c, z);
}}
"""


def _head(H: int, O: int, regression: bool) -> str:
    """head: y = HEAD_W h + HEAD_B in float32, denormalized for regression."""
    denorm = "        y[o] = acc * Y_STD[o] + Y_MEAN[o];" if regression else "        y[o] = acc;"
    return f"""static void head(const float h[{H}], float y[{O}])
{{
    int o, j;
    for (o = 0; o < {O}; ++o) {{
        float acc = HEAD_B[o];
        for (j = 0; j < {H}; ++j)
            acc += HEAD_W[o][j] * h[j];
{denorm}
    }}
}}
"""


def source(prep: dict) -> str:
    """NAME.c in fp32 from codegen.prepare's dict (its prefix, dims and weights: a ModelWeights)."""
    p, dims, w = prep["prefix"], prep["dims"], prep["weights"]
    return library_source(p, dims, FP32, _parts(p, w, dims), (w.x_mean, w.x_std, w.y_mean, w.y_std))


def _parts(p: str, w: ModelWeights, dims: dict) -> LibraryParts:
    """The fp32 library's own text: the embedding table (token ids), transposed float32 weights in panels, the
    float gate math, its layers (LSTM or GRU), head and the batched full-sequence path."""
    H, O, gru = dims["H"], dims["O"], is_gru(dims)
    constants = []
    if w.embedding is not None:
        constants.append(f"/* the embedding table ({w.embedding.shape[0]} ids x {w.embedding.shape[1]}), float32 */")
        constants.append(c_array("float", "EMB", w.embedding.ravel()))
    for k, lay in enumerate(w.layers):
        b = "b = b_ih, BH = b_hh (G)" if gru else "b = b_ih + b_hh (G)"
        constants.append(f"/* layer {k}: W_x^T ({lay.W_x.shape[1]} x G), W_h^T ({H} x G) in panels; {b} */")
        constants.append(c_array("float", f"L{k}_WX", pack(lay.W_x.T)))
        constants.append(c_array("float", f"L{k}_WH", pack(lay.W_h.T)))
        constants.append(c_array("float", f"L{k}_B", lay.b))
        if gru:
            constants.append(c_array("float", f"L{k}_BH", lay.b_h))
    constants += [c_array("float", "HEAD_W", w.head_w), c_array("float", "HEAD_B", w.head_b)]
    layer = fp32_layer if gru else _layer
    return LibraryParts(
        title=[f"/* {p}.c — generated by `lstm-edge codegen --precision fp32`; do not edit. See {p}.h. No library. */"],
        constants=constants,
        kernels=[_kernels(H, gru)],
        layers=[layer(k, lay.W_x.shape[1], H) for k, lay in enumerate(w.layers)],
        head=_head(H, O, w.y_std is not None),
        batch=batch_source(p, dims),
    )


FP32 = Precision(
    name="fp32",
    state_fields="    float h[{L}][{H}];   /* h_t per layer */\n    float c[{L}][{H}];   /* C_t per layer */",
    h_zero="0.0f",
    h_in="{v}",
    h_out="{v}",
    x_buffer="float xn",
    x_in="{v}",
    source=source,
    check_tolerance=FP32_ABS,
    check_against="the bundle's golden outputs (PyTorch float32)",
    check_note="Tolerance: lstm_edge/tolerances.py FP32_ABS.",
    batch_scratch=scratch_macro,
)
