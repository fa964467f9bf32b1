"""The GRU's own C, in fp32 and in the int8 scheme: its cell, its layer (the step) and its layer over a chunk of
B rows (NAME_run_batch). Everything else — the gate products (gemm_fp32's panels, emit_int8's gates_dot, batch_int8's
gates_rows, called as they are), the activations, the head, the scaffold — is the LSTM's.

torch.nn.GRU's equations, gate blocks r, z, n (ONNX GRU with linear_before_reset=1; codegen.weights reorders ONNX's
z, r, h), with zx = W_x·x + b_ih and zh = W_h·h + b_hh kept apart because b_hn sits inside the reset gate's product:

    r = σ(zx_r + zh_r)    z = σ(zx_z + zh_z)    n = tanh(zx_n + r ⊙ zh_n)    h' = (1 − z) ⊙ n + z ⊙ h

The int8 scheme (lstm_edge.codegen.int8_gru simulates it bit for bit) keeps c_int8_sim's choices: int8 weights with
row scales, int16 activations and h (h at 1/32767), exact integer products, float32 gate math from the tanh table;
b[r], b[z] are b_ih + b_hh summed once (in float64), b[n] is b_in and BHN = b_hn, each added where torch adds it.
"""

from __future__ import annotations

from lstm_edge.c_int8_sim import Q16


def fp32_cell(H: int) -> str:
    """gru_cell: h' from the two pre-activation rows zx (b_ih + W_x·x) and zh (b_hh + W_h·h), float32."""
    return f"""/* r = s(zx_r + zh_r), z = s(zx_z + zh_z), n = tanh(zx_n + r * zh_n); h = (1 - z) * n + z * h (torch.nn.GRU) */
static void gru_cell(float *restrict h, const float *restrict zx, const float *restrict zh)
{{
    int j;
    for (j = 0; j < {H}; ++j) {{
        const float r = sigmoid_f(zx[j] + zh[j]), z = sigmoid_f(zx[{H} + j] + zh[{H} + j]);
        const float n = tanh_f(zx[{2 * H} + j] + r * zh[{2 * H} + j]);
        h[j] = (1.0f - z) * n + z * h[j];
    }}
}}
"""


def fp32_layer(k: int, K: int, H: int) -> str:
    """layerK for a GRU: zx = b_ih + in · W_x^T, zh = b_hh + h · W_h^T (gates_row each), then gru_cell in place."""
    return f"""static void layer{k}(float h[{H}], const float in[{K}])
{{
    float zx[G], zh[G];
    int r;
    for (r = 0; r < G; ++r) {{
        zx[r] = L{k}_B[r];
        zh[r] = L{k}_BH[r];
    }}
    gates_row(zx, in, L{k}_WX, {K});
    gates_row(zh, h, L{k}_WH, {H});
    gru_cell(h, zx, zh);
}}
"""


def fp32_layer_batch(H: int) -> str:
    """gru_layer_batch: one GRU layer over tc steps of B rows, zx as one GEMM over the chunk, zh per step for the B
    rows together (the step's sums, in its order: gemm_fp32)."""
    return f"""/* One GRU layer over tc steps of B rows: zx = b_ih + in . W_x^T for all tc*B rows, then per step
 * zh = b_hh + h . W_h^T for the B rows together and the cell per row; out[t][b] = h after step t. */
static void gru_layer_batch(float *restrict h, float *restrict zx, float *restrict zh, const float *restrict in,
                            float *restrict out, int B, int tc, int K, const float *bx, const float *bh,
                            const float *wx, const float *wh)
{{
    const long n = (long)tc * B;
    long i;
    int r, t, b, j;
    for (i = 0; i < n; ++i)
        for (r = 0; r < G; ++r)
            zx[i * G + r] = bx[r];
    gates_gemm(zx, in, (int)n, wx, K, 0);
    for (t = 0; t < tc; ++t) {{
        for (b = 0; b < B; ++b)
            for (r = 0; r < G; ++r)
                zh[(long)b * G + r] = bh[r];
        gates_gemm(zh, h, B, wh, {H}, t & 1);
        for (b = 0; b < B; ++b) {{
            float *hb = h + (long)b * {H}, *ob = out + ((long)t * B + b) * {H};
            gru_cell(hb, zx + ((long)t * B + b) * G, zh + (long)b * G);
            for (j = 0; j < {H}; ++j)
                ob[j] = hb[j];
        }}
    }}
}}
"""


def int8_cell(ax_t: str, ah_t: str, H: int) -> str:
    """gru_q_X_H: the int8 scheme's GRU gate math of one row from its integer products; h back to int16."""
    return f"""/* r, z = s(ax * sx + ah * sh + b), n = tanh((ax * sx + b_in) + r * (ah * sh + b_hn)), float32 in this order;
 * h = (1 - z) * n + z * (h / 32767), rounded back to int16 */
static void gru_q_{ax_t[:5]}_{ah_t[:5]}(int16_t *restrict h, const {ax_t} *ax, const {ah_t} *ah, const float *sx,
                          const float *sh, const float *b, const float *bhn)
{{
    int j;
    for (j = 0; j < {H}; ++j) {{
        const float zr = (float)ax[j] * sx[j] + (float)ah[j] * sh[j] + b[j];
        const float zz = (float)ax[{H} + j] * sx[{H} + j] + (float)ah[{H} + j] * sh[{H} + j] + b[{H} + j];
        const float xn = (float)ax[{2 * H} + j] * sx[{2 * H} + j] + b[{2 * H} + j];
        const float hn = (float)ah[{2 * H} + j] * sh[{2 * H} + j] + bhn[j];
        const float r = sigmoid_t(zr), z = sigmoid_t(zz), n = tanh_t(xn + r * hn);
        const float hf = (float)h[j] / {Q16:.1f}f;
        h[j] = q16(((1.0f - z) * n + z * hf) * {Q16:.1f}f);
    }}
}}
"""


def int8_layer(k: int, K: int, H: int, ax_t: str, ah_t: str) -> str:
    """layerK for an int8 GRU: gates_dot for in and h (emit_int8's kernels, called as they are), then gru_q."""
    return f"""static void layer{k}(int16_t h[{H}], const int16_t in[{K}])
{{
    {ax_t} ax[G];
    {ah_t} ah[G];
    gates_dot_{ax_t[:5]}(ax, &L{k}_WX[0][0], in, {K});
    gates_dot_{ah_t[:5]}(ah, &L{k}_WH[0][0], h, {H});
    gru_q_{ax_t[:5]}_{ah_t[:5]}(h, ax, ah, L{k}_SX, L{k}_SH, L{k}_B, L{k}_BHN);
}}
"""


def int8_layer_batch(k: int, K: int, H: int, ax_t: str, ah_t: str) -> str:
    """layerK_batch for an int8 GRU over tc steps of B rows (batch_int8's gates_rows, then gru_q per row)."""
    return f"""static void layer{k}_batch(int16_t *restrict h, void *axv, void *ahv, const int16_t *restrict in,
                         int16_t *restrict out, int B, int tc)
{{
    {ax_t} *ax = ({ax_t} *)axv;
    {ah_t} *ah = ({ah_t} *)ahv;
    int t, b, j;
    gates_rows_{ax_t[:5]}(ax, &L{k}_WX[0][0], in, tc * B, {K});
    for (t = 0; t < tc; ++t) {{
        gates_rows_{ah_t[:5]}(ah, &L{k}_WH[0][0], h, B, {H});
        for (b = 0; b < B; ++b) {{
            int16_t *hb = h + (long)b * {H}, *ob = out + ((long)t * B + b) * {H};
            gru_q_{ax_t[:5]}_{ah_t[:5]}(hb, ax + ((long)t * B + b) * G, ah + (long)b * G, L{k}_SX, L{k}_SH, L{k}_B,
                      L{k}_BHN);
            for (j = 0; j < {H}; ++j)
                ob[j] = hb[j];
        }}
    }}
}}
"""
