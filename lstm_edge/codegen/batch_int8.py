"""NAME_run_batch in the int8 scheme: B sequences at once, bit for bit what NAME_run gives on each.

As batch_fp32's path: per chunk of ceil(BATCH_ROWS / B) steps the chunk's input is normalized and rounded to int16
into scratch (rows t·B + b), then per layer the integer products W_x · x for every row of the chunk (gates_rows:
each int8 weight row read once for four rows), and step by step W_h · h for all B rows together, then the gate math
per row — cell_q, the very function the step calls. Integer sums are exact in any order, and every float operation
is the step's own, in its order, so the bits are the step's (and the simulation's: lstm_edge.c_int8_sim).

Scratch (NAME_RUN_BATCH_SCRATCH(B) bytes, aligned for int64): the chunk's input products and one step's recurrent
products (8 bytes each, whichever accumulator a layer uses), C per layer and row (float), h per layer and row and
two buffers of layer inputs (int16). A GRU (lstm_edge.codegen.gru) holds no C; token ids are copied from the int16
EMB table instead of normalized and rounded.
"""

from __future__ import annotations

from lstm_edge.c_int8_sim import Q16
from lstm_edge.codegen.batch_fp32 import BATCH_ROWS, embed_source, normalize_source, states_source
from lstm_edge.codegen.gru import int8_layer_batch
from lstm_edge.codegen.int8_avx2 import AVX2, avx2_cell
from lstm_edge.codegen.scaffold import ids_check, is_gru, x_arg


def scratch_macro(P: str, dims: dict) -> str:
    """The header's NAME_RUN_BATCH_SCRATCH(B): bytes of scratch run_batch needs for B rows (0 for B <= 0)."""
    L, H, F = dims["L"], dims["H"], dims["F"]
    M, G = max(F, H), dims.get("G", 3 * H if is_gru(dims) else 4 * H)
    rows = f"(((long)(B) + {BATCH_ROWS - 1}) / (B) * (B))"
    if is_gru(dims):
        return (
            f"/* bytes of scratch {P.lower()}_run_batch needs for B rows: per chunk of ceil({BATCH_ROWS} / B) steps the\n"
            f" * input products (8 bytes each), one step's recurrent products, h per layer and row and two buffers\n"
            f" * of layer inputs (int16) */\n"
            f"#define {P}_RUN_BATCH_SCRATCH(B) ((B) > 0 ? (size_t)({rows} * {8 * G + 4 * M}L + "
            f"(long)(B) * {8 * G + 2 * L * H}L) : (size_t)0)\n"
        )
    return (
        f"/* bytes of scratch {P.lower()}_run_batch needs for B rows: per chunk of ceil({BATCH_ROWS} / B) steps the\n"
        f" * input products (8 bytes each), one step's recurrent products, C per layer and row (float), h per layer\n"
        f" * and row and two buffers of layer inputs (int16) */\n"
        f"#define {P}_RUN_BATCH_SCRATCH(B) ((B) > 0 ? (size_t)({rows} * {8 * G + 4 * M}L + "
        f"(long)(B) * {8 * G + 4 * L * H + 2 * L * H}L) : (size_t)0)\n"
    )


def rows_kernel(acc: str) -> str:
    """gates_rows_intNN: acc[n][r] = w[r] · x[n] for N rows, exact in `acc`: two weight rows × four x rows at a time
    (8 sums in registers; each loaded vector used 2 or 4 times)."""
    tag = acc[:5]
    sums = "\n".join(
        f"                a{i} += wa[k] * x{i}[k];\n                b{i} += wb[k] * x{i}[k];" for i in range(4)
    )
    stores = "\n".join(
        f"            acc[(long)(n + {i}) * G + r] = a{i}, acc[(long)(n + {i}) * G + r + 1] = b{i};" for i in range(4)
    )
    return f"""/* acc[n][r] = sum_k w[r][k] * x[n][k] for N rows (x: N x K int16), exact in {acc}: two weight rows and four
 * x rows at a time; the sums are the step's (gates_dot_{tag}) because integer sums are exact in any order */
static void gates_rows_{tag}({acc} *restrict acc, const int8_t *restrict w, const int16_t *restrict x, int N, int K)
{{
    int r, n, k;
{_few_rows(tag)}    for (r = 0; r < G; r += 2) {{ /* G = 4 * hidden is even */
        const int8_t *wa = w + (long)r * K, *wb = wa + K;
        for (n = 0; n + 4 <= N; n += 4) {{
            const int16_t *x0 = x + (long)n * K, *x1 = x0 + K, *x2 = x1 + K, *x3 = x2 + K;
            {acc} a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
            for (k = 0; k < K; ++k) {{
{sums}
            }}
{stores}
        }}
        for (; n < N; ++n) {{
            const int16_t *xn = x + (long)n * K;
            {acc} a = 0, b = 0;
            for (k = 0; k < K; ++k) {{
                a += wa[k] * xn[k];
                b += wb[k] * xn[k];
            }}
            acc[(long)n * G + r] = a, acc[(long)n * G + r + 1] = b;
        }}
    }}
}}
"""


def _few_rows(tag: str) -> str:
    """For int32 sums under AVX2: fewer than four rows (the recurrent product at B < 4) row by row through the step's
    gates_dot (four weight rows per activation load), which the 4-row blocks below cannot use (measured at the seed's
    size, B1·T100: the run 1.28x the per-row NAME_run's time before)."""
    if tag != "int32":
        return ""
    return f"""#if {AVX2}
    if (N < 4) {{
        for (n = 0; n < N; ++n)
            gates_dot_int32(acc + (long)n * G, w, x + (long)n * K, K);
        return;
    }}
#endif
"""


def cell_source(ax_t: str, ah_t: str, H: int) -> str:
    """cell_q_X_H: the gate math of one row from its integer products (the step's and the batched run's); with
    int32 products on x86 with AVX2, int8_avx2's eight units at a time first."""
    name = f"cell_q_{ax_t[:5]}_{ah_t[:5]}"
    z = [
        f"(float)ax[{o}j] * sx[{o}j] + (float)ah[{o}j] * sh[{o}j] + b[{o}j]".replace("[0 + j]", "[j]")
        for o in ("", f"{H} + ", f"{2 * H} + ", f"{3 * H} + ")
    ]
    return f"""/* z = ax * sx + ah * sh + b per gate row (float32, in this order), then the cell; h rounded back to int16 */
static void {name}(int16_t *restrict h, float *restrict c, const {ax_t} *ax, const {ah_t} *ah, const float *sx,
                   const float *sh, const float *b)
{{
    int j = 0;
{avx2_cell(H) if ax_t == ah_t == "int32_t" else ""}    for (; j < {H}; ++j) {{
        const float zi = {z[0]};
        const float zf = {z[1]};
        const float zc = {z[2]};
        const float zo = {z[3]};
        const float i = sigmoid_t(zi), f = sigmoid_t(zf), g = tanh_t(zc), o = sigmoid_t(zo);
        c[j] = f * c[j] + i * g;
        h[j] = q16(o * tanh_t(c[j]) * {Q16:.1f}f);
    }}
}}
"""


def layer_batch(k: int, K: int, H: int, ax_t: str, ah_t: str) -> str:
    """layerK_batch: layer k over tc steps of B rows, its products in the scratch buffers axv / ahv."""
    cell = f"cell_q_{ax_t[:5]}_{ah_t[:5]}"
    return f"""static void layer{k}_batch(int16_t *restrict h, float *restrict c, void *axv, void *ahv,
                         const int16_t *restrict in, int16_t *restrict out, int B, int tc)
{{
    {ax_t} *ax = ({ax_t} *)axv;
    {ah_t} *ah = ({ah_t} *)ahv;
    int t, b, j;
    gates_rows_{ax_t[:5]}(ax, &L{k}_WX[0][0], in, tc * B, {K});
    for (t = 0; t < tc; ++t) {{
        gates_rows_{ah_t[:5]}(ah, &L{k}_WH[0][0], h, B, {H});
        for (b = 0; b < B; ++b) {{
            int16_t *hb = h + (long)b * {H}, *ob = out + ((long)t * B + b) * {H};
            {cell}(hb, c + (long)b * {H}, ax + ((long)t * B + b) * G, ah + (long)b * G, L{k}_SX, L{k}_SH, L{k}_B);
            for (j = 0; j < {H}; ++j)
                ob[j] = hb[j];
        }}
    }}
}}
"""


def _run_batch(p: str, dims: dict) -> str:
    """NAME_run_batch_scratch and NAME_run_batch: the chunk loop, the layer chain, the head, the states."""
    L, H, F, O, V = dims["L"], dims["H"], dims["F"], dims["O"], dims.get("V", 0)
    M, P, gru = max(F, H), p.upper(), is_gru(dims)
    chain = "\n".join(
        f"        layer{k}_batch(h + {k * H}L * B, {'' if gru else f'c + {k * H}L * B, '}ax, ah, in, out, B, tc);\n"
        "        tmp = in, in = out, out = tmp;"
        for k in range(L)
    )
    if gru:
        pointers = """    int16_t *h = (int16_t *)(ah + (long)B * G), *in, *out, *tmp;"""
    else:
        pointers = f"""    float *c = (float *)(ah + (long)B * G);
    int16_t *h = (int16_t *)(c + {L * H}L * B), *in, *out, *tmp;"""
    seq = dims["head"] == "sequence"
    seq_head = f"""        for (t = 0; t < tc; ++t)
            for (b = 0; b < B; ++b)
                head(in + ((long)t * B + b) * {H}, y + ((long)b * T + t0 + t) * {O});"""
    last_head = f"""    for (b = 0; b < B; ++b)
        head(h + ({L - 1}L * B + b) * {H}, y + (long)b * {O});"""
    x_t, ret, ok = x_arg(dims)
    x_name, states = ("ids" if V else "x"), ("h" if gru else "h, c")
    check = ids_check(V, "(long)B * T") if V else ""
    load = "embed_chunk(in, ids, B, T, t0, tc);" if V else "normalize_chunk(in, x, B, T, t0, tc);"
    return f"""size_t {p}_run_batch_scratch(int B) {{ return {P}_RUN_BATCH_SCRATCH(B); }}

{ret} {p}_run_batch({p}_state *s, int B, const {x_t} *{x_name}, int T, float *y, void *scratch)
{{
    const int steps = B > 0 ? ({BATCH_ROWS} + B - 1) / B : 0;
    const long rows = (long)steps * B;
    int64_t *ax = (int64_t *)scratch, *ah = ax + rows * G;
{pointers}
    int t0, t, b;
    if (B <= 0)
        return {ok};
{check}    (void)t;
    states_in(s, B, {states});
    for (t0 = 0; t0 < T; t0 += steps) {{
        const int tc = T - t0 < steps ? T - t0 : steps;
        in = h + {L * H}L * B, out = in + rows * {M};
        {load}
{chain}
{seq_head if seq else ""}
    }}
{"" if seq else last_head}
    states_out(s, B, {states});{f"{chr(10)}    return {ok};" if ok else ""}
}}
"""


def batch_source(p: str, dims: dict, x_in: str, acc_types: list[tuple[str, str]]) -> str:
    """The int8 batched path as C (after the layers and the head): gates_rows per accumulator type, each layer's
    layerK_batch, the state copies, normalize_chunk (x_in: the precision's conversion), NAME_run_batch.
    acc_types: each layer's (input, recurrent) accumulator C type."""
    F, H, gru = dims["F"], dims["H"], is_gru(dims)
    out = [rows_kernel(a) for a in sorted({t for pair in acc_types for t in pair})]
    layer = int8_layer_batch if gru else layer_batch
    out += [layer(k, F if k == 0 else H, H, *pair) for k, pair in enumerate(acc_types)]
    load = embed_source(F, "int16_t") if dims.get("V") else normalize_source(F, "int16_t", x_in)
    out += [states_source(p, dims["L"], H, "int16_t", cell=not gru), load, _run_batch(p, dims)]
    return "\n".join(out)
