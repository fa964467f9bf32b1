"""int8 C: the scheme of lstm_edge.c_int8_sim (int8 weights with row scales, int16 activations and h, integer
accumulation, float32 cell and gate math from a tanh table), bit for bit what the simulation computes.

Gate matrices are stored as they are (4H × K): the gate product is an integer dot product per row, which compilers
vectorize without any reassociation licence (integer sums are exact).
"""

from __future__ import annotations

import numpy as np

from lstm_edge.c_int8_sim import Q16, TANH_LIMIT, TANH_N, TANH_PER_UNIT, Int16x8Params, accumulator_bits
from lstm_edge.codegen.batch_int8 import batch_source, cell_source, scratch_macro
from lstm_edge.codegen.c_literals import c_array, c_float
from lstm_edge.codegen.gru import int8_cell, int8_layer
from lstm_edge.codegen.int8_avx2 import avx2_dot, avx2_prelude
from lstm_edge.codegen.scaffold import LibraryParts, Precision, is_gru, library_source
from lstm_edge.tolerances import C_INT8_VS_SIM

INT8_X_IN = "q16({v} * X_INV_SCALE)"  # the normalized input {v} as the int16 layer 0 takes (step and batch alike)
TITLE = [
    " * int8 weights (one scale per output row), int16 activations and h, int32 accumulation, float32 cell and",
    " * gate math with a table tanh: no library at all. lstm_edge/c_int8_sim.py computes the same bits;",
    " * build with -ffp-contract=off so that no compiler fuses a multiply-add the simulation rounds twice. */",
]


def _f32(t) -> np.ndarray:
    """A torch tensor as float32 numpy."""
    return t.detach().numpy().astype(np.float32)


def _i8(t) -> np.ndarray:
    """An int8-valued torch tensor as int8 numpy."""
    return t.detach().numpy().astype(np.int8)


def _acc_type(k: int) -> str:
    """The C integer type that sums a row of k int8 x int16 products exactly (c_int8_sim.accumulator_bits)."""
    return "int32_t" if accumulator_bits(k) == 32 else "int64_t"


DSP = "LSTM_EDGE_DSP"  # 1 in NAME.c where the SMLAD path is compiled (Arm DSP extension, not LSTM_EDGE_NO_DSP)


def _dsp_prelude() -> str:
    """The DSP block's opening: whether NAME.c takes the SMLAD path, and the compiler's own headers it needs."""
    return f"""/* Arm's DSP extension (Cortex-M4/M7/M33...): the gate products as dual 16-bit multiply-accumulates (SMLAD, as
 * CMSIS-NN does). Compile with -DLSTM_EDGE_NO_DSP for the portable loop; the results are the same bits (integer
 * sums are exact in any order). <arm_acle.h>: the compiler's intrinsics; memcpy of 4 bytes is one load. */
#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && !defined(__ARM_BIG_ENDIAN) && \\
    !defined(LSTM_EDGE_NO_DSP)
#define {DSP} 1
#include <arm_acle.h>
#include <string.h>
#else
#define {DSP} 0
#endif
"""


def _pack_pairs() -> str:
    """pack_pairs: the int16 activations as the 32-bit pairs dot4 multiplies, once per gates_dot call."""
    return f"""#if {DSP}
/* vp = v[0..K4) as the pairs SMLAD multiplies with a word of 4 int8 weights: (v0, v2), (v1, v3), (v4, v6), ...
 * (low half first). Once per call; each is then used by all G rows. K4: a multiple of 4. */
static void pack_pairs(uint32_t *restrict vp, const int16_t *restrict v, int K4)
{{
    int k;
    for (k = 0; k < K4; k += 4) {{
        vp[k / 2] = (uint32_t)(uint16_t)v[k] | (uint32_t)(uint16_t)v[k + 2] << 16;
        vp[k / 2 + 1] = (uint32_t)(uint16_t)v[k + 1] | (uint32_t)(uint16_t)v[k + 3] << 16;
    }}
}}
#endif
"""


def _dot4_dsp(acc: str) -> str:
    """dot4_intNN: s + w[0..3] · v[0..3] by two SMLADs (SMLALD for an int64 accumulator), behind LSTM_EDGE_DSP."""
    tag, mac = acc[:5], "__smlad" if acc == "int32_t" else "__smlald"
    return f"""#if {DSP}
/* s + w[0]v[0] + w[1]v[1] + w[2]v[2] + w[3]v[3]: 4 int8 weights in one word, sign-extended as the pairs (w0, w2)
 * and (w1, w3) (SXTB16, and SXTB16 of the word rotated by 8), times vp's pairs (pack_pairs); two {mac.upper()[2:]}s.
 * Exact: any partial sum of a row's products fits {acc} (c_int8_sim.accumulator_bits), so the sum is the portable
 * loop's in any order. */
static {acc} dot4_{tag}({acc} s, const int8_t *w, const uint32_t *vp)
{{
    uint32_t w4;
    memcpy(&w4, w, 4); /* a row starts anywhere (K may be odd): an unaligned read without undefined behaviour */
    s = {mac}((int16x2_t)vp[0], __sxtb16((int8x4_t)w4), s);
    return {mac}((int16x2_t)vp[1], __sxtb16((int8x4_t)(w4 >> 8 | w4 << 24)), s);
}}
#endif
"""


def _gates_dot(acc: str, M: int) -> str:
    """gates_dot_intNN: one integer dot product per gate row, accumulated in `acc` (4 at a time by SMLAD where the
    DSP extension is there, two rows at a time, the K mod 4 tail by the portable products; for int32 on x86 with
    AVX2, int8_avx2's four rows at a time). M: the longest K (max(input, hidden))."""
    tag = acc[:5]
    return f"""{_dot4_dsp(acc)}
/* acc[r] = sum_k w[r][k] * v[k], exact in {acc}: a dot product per gate row. Integer sums need no
 * reassociation licence, so gcc vectorizes it as multiply-add pairs (vpmaddwd), measured 2.5x faster than the axpy form
 * at the seed's size; on a Cortex-M with the DSP extension four products at a time go through dot4_{tag} (SMLAD). */
static void gates_dot_{tag}({acc} *restrict acc, const int8_t *restrict w, const int16_t *restrict v, int K)
{{
    int r, k;
#if {DSP}
    uint32_t vp[{max(2, M // 4 * 2)}];
    const int K4 = K - K % 4;
    pack_pairs(vp, v, K4);
    for (r = 0; r < G; r += 2) {{ /* two rows share each pair of activations loaded; G = 4 * hidden is even */
        const int8_t *wa = w + (long)r * K, *wb = wa + K;
        const uint32_t *pv = vp;
        {acc} a = 0, b = 0;
        for (k = 0; k < K4; k += 4, pv += 2) {{
            a = dot4_{tag}(a, wa + k, pv);
            b = dot4_{tag}(b, wb + k, pv);
        }}
        for (; k < K; ++k) {{ /* the tail: K mod 4 */
            a += wa[k] * v[k];
            b += wb[k] * v[k];
        }}
        acc[r] = a, acc[r + 1] = b;
    }}
{avx2_dot() if acc == "int32_t" else ""}#else
    for (r = 0; r < G; ++r) {{
        const int8_t *wr = w + (long)r * K;
        {acc} s = 0;
        for (k = 0; k < K; ++k)
            s += wr[k] * v[k];
        acc[r] = s;
    }}
#endif
}}
"""


def _activations() -> str:
    """q16 (round to int16), tanh_t (the table, interpolated) and sigmoid_t (from tanh_t)."""
    return f"""/* round half away from zero to int16 after clamping to +-32767 (NaN -> 0) */
static int16_t q16(float v)
{{
    if (!(v == v))
        v = 0.0f;
    if (v > {Q16:.1f}f)
        v = {Q16:.1f}f;
    if (v < -{Q16:.1f}f)
        v = -{Q16:.1f}f;
    return (int16_t)(v >= 0.0f ? v + 0.5f : v - 0.5f);
}}

/* tanh from the table at |z| (tanh is odd), linear between entries, saturating beyond {TANH_LIMIT:g} */
static float tanh_t(float z)
{{
    float t = (z < 0.0f ? -z : z) * {float(TANH_PER_UNIT):.1f}f, y;
    int i;
    if (!(t < {float(TANH_N):.1f}f))
        t = {float(TANH_N):.1f}f;
    i = (int)t;
    if (i > {TANH_N - 1})
        i = {TANH_N - 1};
    y = TANH_TABLE[i] + (t - (float)i) * (TANH_TABLE[i + 1] - TANH_TABLE[i]);
    return z < 0.0f ? -y : y;
}}

static float sigmoid_t(float z) {{ return 0.5f + 0.5f * tanh_t(0.5f * z); }}
"""


def _layer(k: int, K: int, H: int) -> str:
    """layerK: integer gate products for in and h, then cell_q (scaled to float32, the cell, h back to int16)."""
    ax_t, ah_t = _acc_type(K), _acc_type(H)
    return f"""static void layer{k}(int16_t h[{H}], float c[{H}], const int16_t in[{K}])
{{
    {ax_t} ax[G];
    {ah_t} ah[G];
    gates_dot_{ax_t[:5]}(ax, &L{k}_WX[0][0], in, {K});
    gates_dot_{ah_t[:5]}(ah, &L{k}_WH[0][0], h, {H});
    cell_q_{ax_t[:5]}_{ah_t[:5]}(h, c, ax, ah, L{k}_SX, L{k}_SH, L{k}_B);
}}
"""


def _head(H: int, O: int, regression: bool) -> str:
    """head: an integer dot product per output on the int16 h, scaled, biased, denormalized for regression."""
    head_acc = _acc_type(H)
    denorm = "        y[o] = v * Y_STD[o] + Y_MEAN[o];" if regression else "        y[o] = v;"
    return f"""static void head(const int16_t h[{H}], float y[{O}])
{{
    int o, j;
    for (o = 0; o < {O}; ++o) {{
        {head_acc} acc = 0;
        float v;
        for (j = 0; j < {H}; ++j)
            acc += HEAD_W[o][j] * ({head_acc})h[j];
        v = (float)acc * HEAD_S[o] + HEAD_B[o];
{denorm}
    }}
}}
"""


def source(prep: dict) -> str:
    """NAME.c in int8 from codegen.prepare's dict (its prefix, dims and params: c_int8_sim.Int16x8Params)."""
    p, dims, params = prep["prefix"], prep["dims"], prep["params"]
    y_mean, y_std = (None, None) if params.y_std is None else (_f32(params.y_mean), _f32(params.y_std))
    norm = (_f32(params.x_mean), _f32(params.x_std), y_mean, y_std)
    return library_source(p, dims, INT8, _parts(p, params, dims, prep.get("embedding_q")), norm)


def _padded(w: np.ndarray, G: int) -> np.ndarray:
    """int8 weight rows padded with zero rows to G (a GRU's odd 3H, for batch_int8's kernels that take rows in
    pairs: the pad row's products are computed and never read)."""
    return np.concatenate([w, np.zeros((G - w.shape[0], w.shape[1]), np.int8)]) if G > w.shape[0] else w


def _constants(params: Int16x8Params, dims: dict, emb: np.ndarray | None) -> list[str]:
    """The input scale, the tanh table, the int16 embedding table (token ids), each layer's int8 weights (G rows)
    with their row scales and bias (a GRU's b_hn as BHN), and the head's."""
    H = dims["H"]
    G = dims.get("G", 3 * H if is_gru(dims) else 4 * H)
    out = [
        f"static const float X_INV_SCALE = {c_float(float(params.x_inv_scale))}; "
        f"/* int16 input = q16(x_normalized * this); covers |x_normalized| <= {params.x_amax:.6g} */",
        "",
        f"/* tanh(k/{TANH_PER_UNIT}), k = 0..{TANH_N} */",
        c_array("float", "TANH_TABLE", params.table.numpy()),
    ]
    if emb is not None:  # the table is already at the input scale: X_INV_SCALE is provenance, not code
        out[0] = f"/* EMB[v] = q16(E[v] * {c_float(float(params.x_inv_scale))}): |E| <= {params.x_amax:.6g} */"
        out.append(f"/* the embedding table ({emb.shape[0]} ids x {emb.shape[1]}) as int16 at layer 0's input scale */")
        out.append(c_array("int16_t", "EMB", emb.ravel()))
    for k, lay in enumerate(params.layers):
        out.append(
            f"/* layer {k}: W_x (G x {lay.wx.shape[1]}), W_h (G x {H}) int8; row scales (weight x activation); b */"
        )
        out.append(c_array("int8_t", f"L{k}_WX", _padded(_i8(lay.wx), G)))
        out.append(c_array("int8_t", f"L{k}_WH", _padded(_i8(lay.wh), G)))
        out.append(c_array("float", f"L{k}_SX", _f32(lay.sx)))
        out.append(c_array("float", f"L{k}_SH", _f32(lay.sh)))
        out.append(c_array("float", f"L{k}_B", _f32(lay.b)))
        if is_gru(dims):
            out.append(c_array("float", f"L{k}_BHN", _f32(lay.bhn)))
    out.append(c_array("int8_t", "HEAD_W", _i8(params.head_w)))
    out.append(c_array("float", "HEAD_S", _f32(params.head_s)))
    out.append(c_array("float", "HEAD_B", _f32(params.head_b)))
    return out


def _parts(p: str, params: Int16x8Params, dims: dict, emb: np.ndarray | None = None) -> LibraryParts:
    """The int8 library's own text: its constants, one gates_dot per accumulator type used, the table activations,
    the gate math (cell_q, or a GRU's gru_q, per pair of accumulator types), its layers, head and the batched path."""
    H, O, gru = dims["H"], dims["O"], is_gru(dims)
    M = max(H, *(lay.wx.shape[1] for lay in params.layers))  # the longest K a gates_dot sees (its packed pairs)
    pairs = [(_acc_type(lay.wx.shape[1]), _acc_type(H)) for lay in params.layers]
    accs = {t for pair in pairs for t in pair}
    cell = int8_cell if gru else cell_source
    avx2 = ("int32_t" in accs, not gru and ("int32_t", "int32_t") in pairs)  # which AVX2 paths NAME.c has
    cells = [cell(ax_t, ah_t, H) for ax_t, ah_t in sorted(set(pairs))]
    layers = [
        int8_layer(k, lay.wx.shape[1], H, *pairs[k]) if gru else _layer(k, lay.wx.shape[1], H)
        for k, lay in enumerate(params.layers)
    ]
    return LibraryParts(
        title=[f"/* {p}.c — generated by `lstm-edge codegen --precision int8`; do not edit. See {p}.h.", *TITLE],
        constants=_constants(params, dims, emb),
        kernels=[
            _dsp_prelude(),
            avx2_prelude(*avx2),
            _pack_pairs(),
            *(_gates_dot(acc, M) for acc in sorted(accs)),
            _activations(),
            *cells,
        ],
        layers=layers,
        head=_head(H, O, params.y_std is not None),
        batch=batch_source(p, dims, INT8_X_IN, pairs),
    )


INT8 = Precision(
    name="int8",
    state_fields=(
        "    int16_t h[{L}][{H}]; /* h_t per layer, as round(h * 32767) */\n"
        "    float c[{L}][{H}];   /* C_t per layer, float32 */"
    ),
    h_zero="0",
    h_in=f"q16({{v}} * {Q16:.1f}f)",
    h_out=f"(float){{v}} / {Q16:.1f}f",
    x_buffer="int16_t xq",
    x_in=INT8_X_IN,
    source=source,
    check_tolerance=C_INT8_VS_SIM,
    check_against="lstm_edge/c_int8_sim.py's outputs for the same inputs",
    check_note="Tolerance: lstm_edge/tolerances.py C_INT8_VS_SIM (bit for bit).",
    batch_scratch=scratch_macro,
    x_clips=f"{{v}} * X_INV_SCALE > {Q16:.1f}f || {{v}} * X_INV_SCALE < -{Q16:.1f}f",  # q16's clamp; NaN: false
)
