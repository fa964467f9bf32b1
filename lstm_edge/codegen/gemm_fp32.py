"""fp32 gate products as panel GEMMs: the weight layout, the register-blocked kernels, and gates_gemm.

W^T (K × G, row k holds input k's weight for every gate row) is stored as panels of PANEL gate columns, each a
contiguous K × PANEL block (the last one narrower when PANEL does not divide G). A row-major K × G matrix read a
panel at a time strides G floats per k — 4 KB at the seed's size, so every k lands in the same L1 sets and the block
streams from L2; packed, a panel is one contiguous run that stays in L1 while every batch row passes over it.

gates_gemm(z, x, N, w, K) adds x[N][K] · W^T to z[N][G]: per panel, four rows at a time (4 × PANEL accumulators in
registers, each panel element loaded once per four rows), then one row at a time. Every z[n][r] sums in exactly the
order of the one-row axpy this replaced — b, then inputs in groups of four, (w0·x0 + w1·x1 + w2·x2 + w3·x3) added
each time, then the remaining inputs one by one — so one row (the streaming step), B rows (the batched run) and the
old layout give the same bits (the c runtime builds fp32 with -ffp-contract=fast: still one set of functions).
"""

from __future__ import annotations

import numpy as np

PANEL = 32  # gate columns per panel: 4 AVX2 / 2 AVX-512 vectors per row, 4 rows = 16 / 8 accumulator registers
ROWS = 4  # batch rows per register block
# columns of a panel a block of ROWS rows takes at a time: 4 × 16 accumulators (8 AVX2 registers) beside the
# weights and inputs. 4 × 32 spilled to the stack: 16 columns made the seed-size B64·T100 run 0.86x the time (one
# interleaved run, /tmp builds of the same generated C, same bits).
SUB = 16


def pack(wt: np.ndarray) -> np.ndarray:
    """W^T (K × G) as the C stores it: panels of PANEL columns, each K × width in row-major order, concatenated."""
    wt = np.asarray(wt, np.float32)
    G = wt.shape[1]
    return np.concatenate([wt[:, c : c + PANEL].ravel() for c in range(0, G, PANEL)])


def _panel_kernel(rows: int, width: int) -> str:
    """panelR_W: z[i][0..W) += x[i][0..K) · w (K × W) for R rows, the sums in the one-row axpy's order. Several
    rows take the panel SUB columns at a time (R × SUB accumulators fit the registers; R × W spilled), which leaves
    every sum's order as it was."""
    sub = SUB if rows > 1 and width % SUB == 0 else width
    return f"""static void panel{rows}_{width}(float *restrict z, const float *restrict x, int K, const float *restrict w)
{{
    const int k4 = K - K % 4; /* inputs in groups of four, then the rest one by one */
    int i, k, c, s;
    for (s = 0; s < {width}; s += {sub}) {{ /* {sub} columns at a time */
        float acc[{rows}][{sub}];
        for (i = 0; i < {rows}; ++i)
            for (c = 0; c < {sub}; ++c)
                acc[i][c] = z[(long)i * G + s + c];
        for (k = 0; k < k4; k += 4) {{
            const float *w0 = w + (long)k * {width} + s, *w1 = w0 + {width}, *w2 = w1 + {width}, *w3 = w2 + {width};
            for (i = 0; i < {rows}; ++i) {{
                const float *xi = x + (long)i * K + k;
                const float x0 = xi[0], x1 = xi[1], x2 = xi[2], x3 = xi[3];
                for (c = 0; c < {sub}; ++c)
                    acc[i][c] += w0[c] * x0 + w1[c] * x1 + w2[c] * x2 + w3[c] * x3;
            }}
        }}
        for (k = k4; k < K; ++k) {{
            const float *wk = w + (long)k * {width} + s;
            for (i = 0; i < {rows}; ++i) {{
                const float xk = x[(long)i * K + k];
                for (c = 0; c < {sub}; ++c)
                    acc[i][c] += wk[c] * xk;
            }}
        }}
        for (i = 0; i < {rows}; ++i)
            for (c = 0; c < {sub}; ++c)
                z[(long)i * G + s + c] = acc[i][c];
    }}
}}
"""


def _panel_pass(width: int, loop: str, offset: str, one_row: bool) -> str:
    """One pass over panels of one width (`loop`: a for header, or "" for one panel at `offset`): for gates_gemm
    rows in blocks of ROWS, then one by one; for gates_row (`one_row`) its single row."""
    rows = (
        f"""        panel1_{width}(zp, x, K, wp);
"""
        if one_row
        else f"""        for (n = 0; n + {ROWS} <= N; n += {ROWS})
            panel{ROWS}_{width}(zp + (long)n * G, x + (long)n * K, K, wp);
        for (; n < N; ++n)
            panel1_{width}(zp + (long)n * G, x + (long)n * K, K, wp);
"""
    )
    return f"""    {loop}{{
        const float *wp = w + (long)({offset}) * K;
        float *zp = z + {offset};
{rows}    }}
"""


def _driver(full: int, narrow: int, one_row: bool) -> str:
    """gates_gemm (N rows: the batched run) or gates_row (one row: the step), over the full and narrow panels.
    Two functions, not gates_gemm with N = 1: gcc would clone the 4-row kernel for the step's small arrays and warn
    about iterations that never run. gates_gemm takes `rev`: nonzero runs the full panels last to first (the
    recurrent product alternates it step by step, so the panels one step read last are the next step's first, still
    in cache: W_h outgrows L1 at hidden 64 and L2 at hidden 256). The order of panels changes no sum."""
    decl = ("    int p;\n" if full else "") + ("" if one_row else "    int n;\n")
    if one_row:
        passes = _panel_pass(PANEL, f"for (p = 0; p < {full}; ++p) ", f"p * {PANEL}", True) if full else ""
    else:
        at = f"(rev ? {full - 1} - p : p) * {PANEL}"
        passes = _panel_pass(PANEL, f"for (p = 0; p < {full}; ++p) ", at, False) if full else "    (void)rev;\n"
    passes += _panel_pass(narrow, "", str(full * PANEL), one_row) if narrow else ""
    if one_row:
        return (
            "/* z[r] += sum_k x[k] * W^T[k][r] for one row, a panel at a time */\n"
            "static void gates_row(float *restrict z, const float *restrict x, const float *restrict w, int K)\n"
            "{\n" + decl + passes + "}\n"
        )
    return (
        "/* z[n][r] += sum_k x[n][k] * W^T[k][r] for N rows (x: N x K, z: N x G), a panel at a time (rev: last first) */\n"
        "static void gates_gemm(float *restrict z, const float *restrict x, int N, const float *restrict w, int K,\n"
        "                       int rev)\n"
        "{\n" + decl + passes + "}\n"
    )


def kernels(G: int) -> str:
    """The panel kernels G needs, gates_row and gates_gemm, as C (G: gate rows, 4 × hidden; the C's own G macro)."""
    full, narrow = divmod(G, PANEL)
    widths = ([PANEL] if full else []) + ([narrow] if narrow else [])
    note = f" (the last {narrow} wide)" if narrow else ""
    out = [
        f"/* W^T is stored as panels of {PANEL} gate columns, each K x {PANEL} contiguous{note}: see\n"
        " * lstm_edge/codegen/gemm_fp32.py for why, and why every width and row count sums in the same order. */\n"
    ]
    out += [_panel_kernel(r, w) for w in widths for r in (ROWS, 1)]
    out += [_driver(full, narrow, True), _driver(full, narrow, False)]
    return "\n".join(out)
