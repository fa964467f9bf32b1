"""NAME_run_batch in fp32: B independent sequences at once, the gate products as GEMMs over the batch.

Per chunk of time steps (ceil(BATCH_ROWS / B) steps, so about BATCH_ROWS rows of B × steps): the chunk's input is
normalized into scratch (time-major, rows t·B + b); per layer, z = b + x · W_x^T for every row of the chunk as one
GEMM (gemm_fp32.gates_gemm: each W_x panel read once for all of them), then step by step z_t += h · W_h^T for all B
rows together (each W_h panel read once per step, not once per row) and the cell update per row. The layer's h
outputs are the next layer's input rows. Every value is computed with the same float operations in the same order
as NAME_run's, in the same functions, so the two agree bit for bit (under either -ffp-contract setting).

Scratch (the caller's, NAME_RUN_BATCH_SCRATCH(B) bytes, aligned for float): h and C per layer and row, the chunk's
pre-activations and two buffers of layer inputs. No malloc, no globals. A GRU (lstm_edge.codegen.gru) holds no C
and one step's recurrent pre-activations (B rows) beside; token ids are looked up in EMB instead of normalized.
"""

from __future__ import annotations

from lstm_edge.codegen.gru import fp32_layer_batch
from lstm_edge.codegen.scaffold import ids_check, is_gru, x_arg

BATCH_ROWS = 64  # rows per chunk of the input projection (B × steps): a W_x panel is reused by this many rows


def scratch_macro(P: str, dims: dict) -> str:
    """The header's NAME_RUN_BATCH_SCRATCH(B): bytes of scratch run_batch needs for B rows (0 for B <= 0)."""
    L, H, F = dims["L"], dims["H"], dims["F"]
    M = max(F, H)
    rows = f"(((long)(B) + {BATCH_ROWS - 1}) / (B) * (B))"
    if is_gru(dims):
        return (
            f"/* bytes of scratch {P.lower()}_run_batch needs for B rows: h per layer and row, one step's recurrent\n"
            f" * pre-activations, then per chunk of ceil({BATCH_ROWS} / B) steps the input pre-activations and two\n"
            f" * buffers of layer inputs (all float) */\n"
            f"#define {P}_RUN_BATCH_SCRATCH(B) ((B) > 0 ? sizeof(float) * (size_t)({L * H + 3 * H}L * (B) + "
            f"{rows} * {3 * H + 2 * M}L) : (size_t)0)\n"
        )
    return (
        f"/* bytes of scratch {P.lower()}_run_batch needs for B rows: h and C per layer and row, then per chunk of\n"
        f" * ceil({BATCH_ROWS} / B) steps the gate pre-activations and two buffers of layer inputs (all float) */\n"
        f"#define {P}_RUN_BATCH_SCRATCH(B) ((B) > 0 ? sizeof(float) * (size_t)(2L * {L} * {H} * (B) + "
        f"{rows} * {4 * H + 2 * M}L) : (size_t)0)\n"
    )


def _layer_batch(H: int) -> str:
    """layer_batch: one layer over a chunk of tc steps for B rows (h, c: [B][H] state; in: [tc·B][K]; out: its h)."""
    return f"""/* One layer over tc steps of B rows: zx = b + in . W_x^T for all tc*B rows, then per step z += h . W_h^T for
 * the B rows together and the cell update per row; out[t][b] = h after step t (the next layer's input). */
static void layer_batch(float *restrict h, float *restrict c, float *restrict zx, const float *restrict in,
                        float *restrict out, int B, int tc, int K, const float *bias, const float *wx, const float *wh)
{{
    const long n = (long)tc * B;
    long i;
    int r, t, b, j;
    for (i = 0; i < n; ++i)
        for (r = 0; r < G; ++r)
            zx[i * G + r] = bias[r];
    gates_gemm(zx, in, (int)n, wx, K, 0);
    for (t = 0; t < tc; ++t) {{
        float *z = zx + (long)t * B * G;
        gates_gemm(z, h, B, wh, {H}, t & 1); /* alternate panel order: gemm_fp32 */
        for (b = 0; b < B; ++b) {{
            float *hb = h + (long)b * {H}, *ob = out + ((long)t * B + b) * {H};
            cell(hb, c + (long)b * {H}, z + (long)b * G);
            for (j = 0; j < {H}; ++j)
                ob[j] = hb[j];
        }}
    }}
}}
"""


def states_source(p: str, L: int, H: int, h_type: str = "float", cell: bool = True) -> str:
    """states_in / states_out: the B state structs to and from the [L][B][H] scratch arrays (h as `h_type`, the
    state struct's own type: no conversion); `cell` False (a GRU): h alone, the functions take no c."""
    c_param, c_in, c_out = (
        ", float *c",
        f"\n                c[((long)l * B + b) * {H} + j] = s[b].c[l][j];",
        (f"\n                s[b].c[l][j] = c[((long)l * B + b) * {H} + j];"),
    )
    if not cell:
        c_param = c_in = c_out = ""
    return f"""static void states_in(const {p}_state *s, int B, {h_type} *h{c_param})
{{
    int l, b, j;
    for (l = 0; l < {L}; ++l)
        for (b = 0; b < B; ++b)
            for (j = 0; j < {H}; ++j) {{
                h[((long)l * B + b) * {H} + j] = s[b].h[l][j];{c_in}
            }}
}}

static void states_out({p}_state *s, int B, const {h_type} *h{c_param.replace("float", "const float")})
{{
    int l, b, j;
    for (l = 0; l < {L}; ++l)
        for (b = 0; b < B; ++b)
            for (j = 0; j < {H}; ++j) {{
                s[b].h[l][j] = h[((long)l * B + b) * {H} + j];{c_out}
            }}
}}
"""


def embed_source(F: int, x_type: str = "float") -> str:
    """embed_chunk: steps t0..t0+tc of ids [B][T] as rows t·B + b of `x_type`, each its EMB row (ids checked by
    NAME_run_batch before any is read), as advance() reads them."""
    return f"""static void embed_chunk({x_type} *restrict xn, const int32_t *restrict ids, int B, int T, int t0, int tc)
{{
    int t, b, j;
    for (t = 0; t < tc; ++t)
        for (b = 0; b < B; ++b) {{
            const {x_type} *er = EMB + (long)ids[(long)b * T + t0 + t] * {F};
            {x_type} *row = xn + ((long)t * B + b) * {F};
            for (j = 0; j < {F}; ++j)
                row[j] = er[j];
        }}
}}
"""


def normalize_source(F: int, x_type: str = "float", x_in: str = "{v}") -> str:
    """normalize_chunk: steps t0..t0+tc of x [B][T][F] as rows t·B + b of `x_type`, normalized (and converted by
    the precision's `x_in`) as advance() does."""
    v = x_in.format(v="(xr[j] - X_MEAN[j]) / X_STD[j]")
    return f"""static void normalize_chunk({x_type} *restrict xn, const float *restrict x, int B, int T, int t0, int tc)
{{
    int t, b, j;
    for (t = 0; t < tc; ++t)
        for (b = 0; b < B; ++b) {{
            const float *xr = x + ((long)b * T + t0 + t) * {F};
            {x_type} *row = xn + ((long)t * B + b) * {F};
            for (j = 0; j < {F}; ++j)
                row[j] = {v};
        }}
}}
"""


def _run_batch(p: str, dims: dict) -> str:
    """NAME_run_batch and NAME_run_batch_scratch: the chunk loop, the layer chain, the head, the states."""
    L, H, F, O, V = dims["L"], dims["H"], dims["F"], dims["O"], dims.get("V", 0)
    M, P, gru = max(F, H), p.upper(), is_gru(dims)
    if gru:
        chain = "\n".join(
            f"        gru_layer_batch(h + {k * H}L * B, zx, zh, in, out, B, tc, {F if k == 0 else H}, "
            f"L{k}_B, L{k}_BH, L{k}_WX, L{k}_WH);\n        tmp = in, in = out, out = tmp;"
            for k in range(L)
        )
        pointers = f"""    float *h = (float *)scratch, *zh = h + {L * H}L * B, *zx = zh + (long)B * G;"""
    else:
        chain = "\n".join(
            f"        layer_batch(h + {k * H}L * B, c + {k * H}L * B, zx, in, out, B, tc, {F if k == 0 else H}, "
            f"L{k}_B, L{k}_WX, L{k}_WH);\n        tmp = in, in = out, out = tmp;"
            for k in range(L)
        )
        pointers = f"""    float *h = (float *)scratch, *c = h + {L * H}L * B, *zx = c + {L * H}L * B;"""
    states = "h" if gru else "h, c"
    seq_head = f"""        for (t = 0; t < tc; ++t)
            for (b = 0; b < B; ++b)
                head(in + ((long)t * B + b) * {H}, y + ((long)b * T + t0 + t) * {O});"""
    last_head = f"""    for (b = 0; b < B; ++b)
        head(h + ({L - 1}L * B + b) * {H}, y + (long)b * {O});"""
    seq = dims["head"] == "sequence"
    x_t, ret, ok = x_arg(dims)
    x_name = "ids" if V else "x"
    check = ids_check(V, "(long)B * T") if V else ""
    load = "embed_chunk(in, ids, B, T, t0, tc);" if V else "normalize_chunk(in, x, B, T, t0, tc);"
    return f"""size_t {p}_run_batch_scratch(int B) {{ return {P}_RUN_BATCH_SCRATCH(B); }}

{ret} {p}_run_batch({p}_state *s, int B, const {x_t} *{x_name}, int T, float *y, void *scratch)
{{
    const int steps = B > 0 ? ({BATCH_ROWS} + B - 1) / B : 0;
{pointers}
    float *in = zx + (long)steps * B * G, *out = in + (long)steps * B * {M}, *tmp;
    int t0, t, b;
    if (B <= 0)
        return {ok};
{check}    (void)t;
    states_in(s, B, {states});
    for (t0 = 0; t0 < T; t0 += steps) {{
        const int tc = T - t0 < steps ? T - t0 : steps;
        in = zx + (long)steps * B * G, out = in + (long)steps * B * {M};
        {load}
{chain}
{seq_head if seq else ""}
    }}
{"" if seq else last_head}
    states_out(s, B, {states});{f"{chr(10)}    return {ok};" if ok else ""}
}}
"""


def batch_source(p: str, dims: dict) -> str:
    """The batched full-sequence path as C (after the layers and the head): layer_batch, the state copies,
    normalize_chunk, NAME_run_batch_scratch and NAME_run_batch."""
    gru = is_gru(dims)
    return "\n".join(
        [
            fp32_layer_batch(dims["H"]) if gru else _layer_batch(dims["H"]),
            states_source(p, dims["L"], dims["H"], cell=not gru),
            embed_source(dims["F"]) if dims.get("V") else normalize_source(dims["F"]),
            _run_batch(p, dims),
        ]
    )
