"""The int8 C's x86 AVX2 paths, behind `#if LSTM_EDGE_AVX2`: the same bits as the portable loops, faster.

- gates_dot_int32 (the streaming step's gate products): four gate rows at a time, 16 products per instruction
  (the int8 weights widened by vpmovsxbw, multiplied with the int16 activations and summed in pairs by vpmaddwd),
  the activations loaded once for the four rows. Integer sums are exact in any order, so the totals are the
  portable loop's. Measured on the AVX2 EPYC (Zen 3), seed size (100 → 256 × 2), one step's four products:
  23.0 µs against the portable loop's 30.1 µs (gcc -O3 -march=native vectorizes that one a row at a time).
- cell_q_int32_int32 (the LSTM's gate math, step and batch alike): eight units at a time, each lane doing the
  portable loop's float operations in its order (no fused multiply-add: the library is built with
  -ffp-contract=off), the tanh table read by gathers, so every lane's bits are the portable unit's.

The batched path's products (batch_int8.gates_rows) need no intrinsics: gcc's vectorized loop runs at this core's
vpmaddwd rate already (57 GMAC/s at B64·T100 against 58–63 in a bare vpmaddwd + vpaddd loop).
`-DLSTM_EDGE_NO_AVX2` compiles the portable loops; tests/test_codegen_avx2.py holds the two to the same bits.
"""

from __future__ import annotations

from lstm_edge.c_int8_sim import Q16, TANH_N, TANH_PER_UNIT

AVX2 = "LSTM_EDGE_AVX2"  # 1 in NAME.c where the AVX2 paths are compiled (__AVX2__, not LSTM_EDGE_NO_AVX2)


def avx2_prelude(dot: bool, cell: bool) -> str:
    """Whether NAME.c takes the AVX2 paths, and the helpers of those it has (an unused static function is an error
    under -Werror): for the dot (a gates_dot_int32), hsum4 (four row totals) and w16 (16 int8 weights as int16); for
    the cell (an LSTM's cell_q_int32_int32), tanh8 / sigmoid8 / q16_8 (tanh_t, sigmoid_t and q16 on eight lanes)."""
    return f"""/* x86 AVX2: the step's gate products 16 at a time and the LSTM cell 8 units at a time, the same bits as the
 * portable loops (exact integer sums; the cell's float operations in the portable order, one lane per unit).
 * Compile with -DLSTM_EDGE_NO_AVX2 for the portable loops. */
#if defined(__AVX2__) && !defined(LSTM_EDGE_NO_AVX2)
#define {AVX2} 1
#include <immintrin.h>
#else
#define {AVX2} 0
#endif
{_dot_helpers() if dot else ""}{_cell_helpers() if cell else ""}"""


def _dot_helpers() -> str:
    """hsum4 and w16, behind LSTM_EDGE_AVX2."""
    return f"""
#if {AVX2}
/* the totals of four rows' int32 lanes, as one vector (row 0 first) */
static __m128i hsum4(__m256i a0, __m256i a1, __m256i a2, __m256i a3)
{{
    const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}}

/* 16 int8 weights from w, sign-extended to int16 */
static __m256i w16(const int8_t *w) {{ return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w)); }}
#endif
"""


def _cell_helpers() -> str:
    """tanh8, sigmoid8 and q16_8, behind LSTM_EDGE_AVX2."""
    return f"""
#if {AVX2}
/* tanh_t on 8 lanes: the same operations in the same order (minps gives its second operand for a NaN, as
 * tanh_t's !(t < N) does) */
static __m256 tanh8(__m256 z)
{{
    const __m256 neg = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
    const __m256 t = _mm256_min_ps(_mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), z),
                                                 _mm256_set1_ps({float(TANH_PER_UNIT):.1f}f)),
                                   _mm256_set1_ps({float(TANH_N):.1f}f));
    const __m256i i = _mm256_min_epi32(_mm256_cvttps_epi32(t), _mm256_set1_epi32({TANH_N - 1}));
    const __m256 lo = _mm256_i32gather_ps(TANH_TABLE, i, 4);
    const __m256 hi = _mm256_i32gather_ps(TANH_TABLE + 1, i, 4);
    const __m256 y = _mm256_add_ps(lo, _mm256_mul_ps(_mm256_sub_ps(t, _mm256_cvtepi32_ps(i)), _mm256_sub_ps(hi, lo)));
    return _mm256_blendv_ps(y, _mm256_xor_ps(y, _mm256_set1_ps(-0.0f)), neg);
}}

static __m256 sigmoid8(__m256 z)
{{
    const __m256 half = _mm256_set1_ps(0.5f);
    return _mm256_add_ps(half, _mm256_mul_ps(half, tanh8(_mm256_mul_ps(half, z))));
}}

/* q16 on 8 lanes, stored as 8 int16 at h */
static void q16_8(int16_t *h, __m256 v)
{{
    const __m256 q = _mm256_set1_ps({Q16:.1f}f), half = _mm256_set1_ps(0.5f);
    __m256i r;
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q)); /* NaN -> 0 */
    v = _mm256_max_ps(_mm256_min_ps(v, q), _mm256_sub_ps(_mm256_setzero_ps(), q));
    v = _mm256_blendv_ps(_mm256_sub_ps(v, half), _mm256_add_ps(v, half), _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ));
    r = _mm256_cvttps_epi32(v);
    _mm_storeu_si128((__m128i *)h, _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
}}
#endif
"""


def avx2_dot() -> str:
    """The AVX2 branch of gates_dot_int32 (between `#elif LSTM_EDGE_AVX2` and `#else`): four rows at a time; the
    K mod 16 tail as one more vector, the row's last 16 weights against activations zeroed where they overlap the
    blocks already summed (K >= 16; shorter rows by the portable products); the G mod 4 rows by the portable ones."""
    madds = "\n".join(
        f"            a{i} = _mm256_add_epi32(a{i}, _mm256_madd_epi16(w16(w{i} + k), x));" for i in range(4)
    )
    tail = "\n".join(
        f"            a{i} = _mm256_add_epi32(a{i}, _mm256_madd_epi16(w16(w{i} + K - 16), xt));" for i in range(4)
    )
    scalar = "\n".join(f"            t[{i}] += w{i}[k] * v[k];" for i in range(4))
    return f"""#elif {AVX2}
    const int K16 = K - K % 16, vector_tail = K % 16 && K >= 16;
    /* v[K - 16 .. K) with the lanes before K16 zeroed: the tail's products, and zeros for the weights summed already
     * (measured: the seed's layer 0, K = 100, spent ~1 us a step in the 4-product scalar tail) */
    const __m256i xt = vector_tail ? _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(v + K - 16)),
                                                      _mm256_cmpgt_epi16(_mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                                                                                           10, 11, 12, 13, 14, 15),
                                                                         _mm256_set1_epi16((short)(15 - K % 16))))
                                   : _mm256_setzero_si256();
    for (r = 0; r + 4 <= G; r += 4) {{ /* the four rows share each vector of activations loaded */
        const int8_t *w0 = w + (long)r * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        int32_t t[4];
        for (k = 0; k < K16; k += 16) {{
            const __m256i x = _mm256_loadu_si256((const __m256i *)(v + k));
{madds}
        }}
        if (vector_tail) {{
{tail}
            k = K;
        }}
        _mm_storeu_si128((__m128i *)t, hsum4(a0, a1, a2, a3));
        for (; k < K; ++k) {{ /* rows shorter than 16 */
{scalar}
        }}
        acc[r] = t[0], acc[r + 1] = t[1], acc[r + 2] = t[2], acc[r + 3] = t[3];
    }}
    for (; r < G; ++r) {{ /* a GRU's G mod 4 rows */
        const int8_t *wr = w + (long)r * K;
        int32_t s = 0;
        for (k = 0; k < K; ++k)
            s += wr[k] * v[k];
        acc[r] = s;
    }}
"""


def avx2_cell(H: int) -> str:
    """The AVX2 loop of cell_q_int32_int32 over units 0 .. H - H mod 8 (the portable loop takes the rest from j).
    Each z is ((float)ax · sx + (float)ah · sh) + b, C = f·C + i·g, h = q16(o · tanh(C) · 32767): the portable order."""

    def z(o: int) -> str:
        off = f" + {o * H}" if o else ""
        return (
            f"_mm256_add_ps(_mm256_add_ps("
            f"_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(ax + j{off}))), "
            f"_mm256_loadu_ps(sx + j{off})), "
            f"_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(ah + j{off}))), "
            f"_mm256_loadu_ps(sh + j{off}))), _mm256_loadu_ps(b + j{off}))"
        )

    return f"""#if {AVX2}
    for (; j + 8 <= {H}; j += 8) {{
        const __m256 i = sigmoid8({z(0)});
        const __m256 f = sigmoid8({z(1)});
        const __m256 g = tanh8({z(2)});
        const __m256 o = sigmoid8({z(3)});
        const __m256 cj = _mm256_add_ps(_mm256_mul_ps(f, _mm256_loadu_ps(c + j)), _mm256_mul_ps(i, g));
        _mm256_storeu_ps(c + j, cj);
        q16_8(h + j, _mm256_mul_ps(_mm256_mul_ps(o, tanh8(cj)), _mm256_set1_ps({Q16:.1f}f)));
    }}
#endif
"""
