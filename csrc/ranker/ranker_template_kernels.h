/* Part of the ranker's template (ranker_template.h): the small numeric kernels of both passes --
 * BLAS wrappers, vectors of 8 lanes and their dot product, axpy and weighted sums, the key transpose
 * of the attention, 8-lane exp and select, and (float32 on AVX-512) the forward pass's own matrix
 * product.  Written in REAL; names carry the precision suffix through F(). */

/* C = alpha op(A) op(B) + beta C, row-major. */
static void F(gemm)(int ta, int tb, int64_t m, int64_t n, int64_t k, REAL alpha, const REAL *a, int64_t lda,
                    const REAL *b, int64_t ldb, REAL beta, REAL *c, int64_t ldc)
{
    if (m == 0 || n == 0)
        return;
    GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
         alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* out[a] += sum_t x[t, a] for an n x d row-major matrix. */
static void F(colsum_add)(const REAL *x, int64_t n, int64_t d, const REAL *ones, REAL *out)
{
    if (n == 0)
        return;
    GEMV(CblasRowMajor, CblasTrans, (int)n, (int)d, (REAL)1, x, (int)d, ones, 1, (REAL)1, out, 1);
}

/* Dot product with 8 independent partial sums in a fixed order, kept in one vector of 8 lanes (left
 * to itself the compiler turns the 8 sums into scalar code once e is a constant). */
typedef REAL F(v8) __attribute__((vector_size(8 * sizeof(REAL))));
typedef IREAL F(iv8) __attribute__((vector_size(8 * sizeof(REAL)))); /* its lane masks */
LAMP_TRANSPOSE8(F(transpose8), F(v8), F(iv8)) /* csrc/common/vmath.h */
static inline REAL F(dot)(const REAL *restrict a, const REAL *restrict b, int64_t n)
{
    F(v8) acc = {0};
    const int64_t blocks = n / 8;
    for (int64_t bi = 0; bi < blocks; bi++) {
        F(v8) x, y;
        memcpy(&x, a + 8 * bi, sizeof x);
        memcpy(&y, b + 8 * bi, sizeof y);
        acc += x * y;
    }
    REAL s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (int64_t k = 8 * blocks; k < n; k++)
        s += a[k] * b[k];
    return s;
}

static inline void F(axpy)(REAL alpha, const REAL *restrict x, REAL *restrict y, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        y[k] += alpha * x[k];
}

/* out[c] += sum_k w[k] rows[k * stride + c] for c < e: the sums stay in registers across k (an
 * axpy per k would store and reload out each time); e a multiple of 8 up to 64, else axpys. */
static inline __attribute__((always_inline)) void F(wsum_add)(const REAL *restrict w, const REAL *restrict rows,
                                                               int64_t stride, int64_t count, REAL *restrict out,
                                                               const int64_t e)
{
    if (e % 8 != 0 || e > 64) {
        for (int64_t k = 0; k < count; k++)
            F(axpy)(w[k], rows + k * stride, out, e);
        return;
    }
    F(v8) acc[8];
    for (int64_t v = 0; v < e / 8; v++)
        memcpy(&acc[v], out + 8 * v, sizeof acc[v]);
    for (int64_t k = 0; k < count; k++) {
        const REAL wk = w[k], *r = rows + k * stride;
        for (int64_t v = 0; v < e / 8; v++) {
            F(v8) x;
            memcpy(&x, r + 8 * v, sizeof x);
            acc[v] += wk * x;
        }
    }
    for (int64_t v = 0; v < e / 8; v++)
        memcpy(out + 8 * v, &acc[v], sizeof acc[v]);
}

#if OWN_GEMM
/* The forward pass's dense products on AVX-512 (float32, widths d a multiple of 32), in place of sgemm:
 * out[t, n] = [res[t, n] +] [bias[n] +] sum_k x[t, k] wt[k, n], then tanh with act, for t < T, n < N
 * (N a multiple of 32); wt is the weight matrix transposed (K x N, packed once per call).  A tile of 8 rows
 * x 32 columns lives in 16 registers over k; the bias, residual and tanh are applied to the tile before it
 * is stored, so there is no zeroing, packing of x, or separate pass over out. */
static inline __attribute__((always_inline)) void F(own_rows)(const int R, int64_t t, int64_t N, int64_t K,
                                                              const float *x, int64_t ldx, const float *wt,
                                                              float *out, int64_t ldo, const float *res,
                                                              int64_t ldr, const float *bias, int act)
{
    for (int64_t n0 = 0; n0 < N; n0 += 32) {
        lamp_v16f acc[8][2];
        for (int r = 0; r < R; r++)
            acc[r][0] = acc[r][1] = (lamp_v16f){0};
        const float *xr = x + t * ldx;
        for (int64_t k = 0; k < K; k++) {
            lamp_v16f w0, w1;
            memcpy(&w0, wt + k * N + n0, sizeof w0);
            memcpy(&w1, wt + k * N + n0 + 16, sizeof w1);
            for (int r = 0; r < R; r++) {
                const float xv = xr[r * ldx + k];
                acc[r][0] += xv * w0;
                acc[r][1] += xv * w1;
            }
        }
        for (int r = 0; r < R; r++)
            for (int h = 0; h < 2; h++) {
                lamp_v16f v = acc[r][h], base, bv;
                if (res || bias) {
                    if (res) {
                        memcpy(&base, res + (t + r) * ldr + n0 + 16 * h, sizeof base);
                        if (bias) {
                            memcpy(&bv, bias + n0 + 16 * h, sizeof bv);
                            base = base + bv;
                        }
                    } else {
                        memcpy(&base, bias + n0 + 16 * h, sizeof base);
                    }
                    v = base + v;
                }
                if (act)
                    v = lamp_fast_tanhf_v16(v);
                memcpy(out + (t + r) * ldo + n0 + 16 * h, &v, sizeof v);
            }
    }
}

LAMP_TARGET_AVX512 __attribute__((noinline)) static void F(own_gemm)(int64_t T, int64_t N, int64_t K,
                                                                     const float *x, int64_t ldx,
                                                                     const float *wt, float *out, int64_t ldo,
                                                                     const float *res, int64_t ldr,
                                                                     const float *bias, int act)
{
    int64_t t = 0;
    for (; t + 8 <= T; t += 8)
        F(own_rows)(8, t, N, K, x, ldx, wt, out, ldo, res, ldr, bias, act);
    for (; t < T; t++)
        F(own_rows)(1, t, N, K, x, ldx, wt, out, ldo, res, ldr, bias, act);
}
#endif

/* 8 lanes of exp (the scores minus their maximum). */
static inline __attribute__((always_inline)) F(v8) F(vexp8)(F(v8) x)
{
#if VEXP_V8F
    return lamp_fast_expf_neg_v8(x);
#else
    for (int l = 0; l < 8; l++)
        x[l] = EXP(x[l]);
    return x;
#endif
}

/* Lanes of mask (all ones) from a, the others from b. */
static inline __attribute__((always_inline)) F(v8) F(vsel)(F(iv8) mask, F(v8) a, F(v8) b)
{
    return (F(v8))(((F(iv8))a & mask) | ((F(iv8))b & ~mask));
}

/* kt[c * np + k] = rows[k * stride + c] for c < e, k < np (rows k >= n read as zeros): 8 x 8 blocks
 * transposed in registers. */
static inline __attribute__((always_inline)) void F(transpose_keys)(const REAL *restrict rows, int64_t stride,
                                                                    int64_t n, int64_t np, REAL *restrict kt,
                                                                    const int64_t e)
{
    if (e % 8 != 0) {
        for (int64_t k = 0; k < np; k++)
            for (int64_t c = 0; c < e; c++)
                kt[c * np + k] = k < n ? rows[k * stride + c] : 0;
        return;
    }
    for (int64_t k8 = 0; k8 < np; k8 += 8)
        for (int64_t c8 = 0; c8 < e; c8 += 8) {
            F(v8) r[8], c[8];
            for (int l = 0; l < 8; l++) {
                if (k8 + l < n)
                    memcpy(&r[l], rows + (k8 + l) * stride + c8, sizeof r[l]);
                else
                    r[l] = (F(v8)){0};
            }
            F(transpose8)(r, c);
            for (int l = 0; l < 8; l++)
                memcpy(kt + (c8 + l) * np + k8, &c[l], sizeof c[l]);
        }
}
