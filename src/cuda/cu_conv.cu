/* 2-D convolution on the device: x [n, ic, ih, iw], W [oc, ic, k, k],
 * b [oc] -> y [n, oc, oh, ow]; K = ic k k, P = oh ow. Explicit im2col
 * into the context's workspace and cuBLAS (FP32), a chunk of `cnt`
 * examples at a time, columns laid out as one matrix cols [K, cnt P]
 * (column e P + p is position p of example e of the chunk):
 *   forward   y_e = W cols_e (strided-batched GEMM, W shared) + b; the
 *             fused tangent ty_e = [W tW] [cols(tx)_e; cols(x)_e] + tb
 *             (tx NULL: tW cols(x)_e + tb), as kernels.c;
 *   backward  dyT [oc, cnt P] = dy of the chunk, transposed;
 *             dW (+)= dyT cols^T (one GEMM per chunk, chunks in order);
 *             dcols = W^T dyT, dx (=|+=) col2im(dcols) (a gather: each
 *             input sums its taps in (ky, kx) order, no atomics);
 *   per example  G_e = dy_e cols_e^T (strided-batched), db_e as the
 *             CPU's 16-lane row sums.
 * The workspace: the caller's ws, of l2rw__cu_conv_ws(s) floats (chunks
 * of s->max_threads examples: the engine's contract, one workspace the
 * net allocates), or with ws NULL the context's (as many examples as it
 * holds).
 * GEMMs sum in cuBLAS's order, not OpenBLAS's: against the CPU the
 * results agree to 2 (k + 4) 2^-24 sum |terms| (k terms: K, 2K for the
 * fused tangent, n P for dW, oc k k for dx). The chunk size depends on
 * the workspace, so bits are reproducible for a fixed workspace size. */
#include "cu_internal.cuh"

typedef l2rw__conv_shape cshape;

static size_t conv_K(const cshape *s) { return (size_t)s->ic * s->k * s->k; }
static size_t conv_P(const cshape *s) { return (size_t)s->oh * s->ow; }

/* Workspace floats reserved for sub-buffer alignment. */
enum { SLACK = 3 * CU_ALIGN_FLOATS };

/* Floats for n examples at once: more than any of the three calls needs
 * (forward with the fused tangent: [W tW] and 2K P per example; backward:
 * (K + oc) P per example), with room for aligning the sub-buffers. */
static size_t ws_floats(const cshape *s, size_t n)
{
    const size_t K = conv_K(s), P = conv_P(s), oc = (size_t)s->oc;
    return cu_round(2 * oc * K) + SLACK + (n ? n : 1) * (2 * K + oc) * P;
}

size_t l2rw__cu_conv_ws_bytes(const cshape *s, int n)
{
    return ws_floats(s, n > 0 ? (size_t)n : 1) * sizeof(float);
}

size_t l2rw__cu_conv_ws(const cshape *s)
{
    return ws_floats(s, s->max_threads > 0 ? (size_t)s->max_threads : 1);
}

int l2rw__cu_conv_slices(void) { return L2RW_CU_CONV_CHUNK; }

/* The workspace of a call: the caller's, or the context's. */
typedef struct {
    float *p;
    size_t floats;
} cu_ws;

static cu_ws workspace(cu_ctx *c, const cshape *s, float *ws)
{
    cu_ws w = {c->ws, c->ws_bytes / sizeof(float)};
    if (ws) {
        w.p = ws;
        w.floats = l2rw__cu_conv_ws(s);
    }
    return w;
}

/* Examples per chunk: what fits in the workspace after `fixed` floats,
 * at most n; 0 (and the error kept) when not even one fits. */
static int chunk_size(cu_ws w, const char *what, size_t fixed, size_t per,
                      int n)
{
    const size_t need = cu_round(fixed) + SLACK;
    size_t cnt = w.floats > need ? (w.floats - need) / per : 0;
    if (cnt > (size_t)n) cnt = (size_t)n;
    if (cnt == 0) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "CUDA %s: workspace of %zu bytes too "
                 "small for one example (%zu bytes; l2rw__cu_reserve)",
                 what, w.floats * sizeof(float), (need + per) * sizeof(float));
        l2rw__cu_note_msg(L2RW_ERR_NOMEM, msg);
    }
    return (int)cnt;
}

/* cols [K, cnt P] of cnt examples from x (the chunk's first example). */
__global__ static void k_im2col(float *cols, const float *x, cshape s, int cnt)
{
    const size_t P = (size_t)s.oh * s.ow, cP = (size_t)cnt * P;
    const size_t K = (size_t)s.ic * s.k * s.k;
    CU_FOR(t, K * cP) {
        const size_t r = t / cP, col = t % cP, e = col / P, q = col % P;
        const int oy = (int)(q / (size_t)s.ow), ox = (int)(q % (size_t)s.ow);
        const int kx = (int)(r % (size_t)s.k),
                  ky = (int)(r / (size_t)s.k % (size_t)s.k);
        const size_t ch = r / ((size_t)s.k * s.k);
        const int iy = oy * s.stride - s.pad + ky;
        const int ix = ox * s.stride - s.pad + kx;
        float v = 0.0f;
        if (iy >= 0 && iy < s.ih && ix >= 0 && ix < s.iw)
            v = x[((e * s.ic + ch) * s.ih + iy) * s.iw + ix];
        cols[t] = v;
    }
}

/* dx [cnt, ic, ih, iw] (=|+=) the adjoint of k_im2col of cols. */
__global__ static void k_col2im(float *dx, const float *cols, cshape s,
                                int cnt, int acc)
{
    const size_t P = (size_t)s.oh * s.ow, cP = (size_t)cnt * P;
    const size_t plane = (size_t)s.ih * s.iw;
    CU_FOR(t, (size_t)cnt * s.ic * plane) {
        const int ix = (int)(t % (size_t)s.iw);
        const int iy = (int)(t / (size_t)s.iw % (size_t)s.ih);
        const size_t ch = t / plane % (size_t)s.ic,
                     e = t / plane / (size_t)s.ic;
        float sum = 0.0f;
        for (int ky = 0; ky < s.k; ky++) {
            const int ty = iy + s.pad - ky;
            if (ty < 0 || ty % s.stride) continue;
            const int oy = ty / s.stride;
            if (oy >= s.oh) continue;
            for (int kx = 0; kx < s.k; kx++) {
                const int tx = ix + s.pad - kx;
                if (tx < 0 || tx % s.stride) continue;
                const int ox = tx / s.stride;
                if (ox >= s.ow) continue;
                const size_t r = (ch * s.k + ky) * s.k + kx;
                sum += cols[r * cP + e * P + (size_t)oy * s.ow + ox];
            }
        }
        dx[t] = acc ? dx[t] + sum : sum;
    }
}

/* dyT [oc, cnt P] from dy [cnt, oc, P]. */
__global__ static void k_transpose(float *dyT, const float *dy, int oc,
                                   size_t P, int cnt)
{
    const size_t out = (size_t)oc * P, cP = (size_t)cnt * P;
    CU_FOR(t, (size_t)cnt * out) {
        const size_t e = t / out, o = t % out / P, p = t % P;
        dyT[o * cP + e * P + p] = dy[t];
    }
}

/* G[e ldg + oc K + o] = the CPU's row sum of dy_e's channel o. */
__global__ static void k_row_sums(float *G, size_t ldg, size_t at,
                                  const float *dy, int oc, size_t P, int cnt)
{
    CU_FOR(t, (size_t)cnt * oc) {
        const size_t e = t / (size_t)oc, o = t % (size_t)oc;
        G[e * ldg + at + o] = (float)cu_row_sum(dy + t * P, P);
    }
}

static void im2col(cu_ctx *c, float *cols, const float *x, const cshape *s,
                   int cnt)
{
    const size_t len = conv_K(s) * cnt * conv_P(s);
    k_im2col<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(cols, x, *s, cnt);
    CU_LAUNCHED("conv im2col");
}

static void col2im(cu_ctx *c, float *dx, const float *cols, const cshape *s,
                   int cnt, int acc)
{
    const size_t len = (size_t)cnt * s->ic * s->ih * s->iw;
    k_col2im<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(dx, cols, *s, cnt,
                                                           acc);
    CU_LAUNCHED("conv col2im");
}

static void transpose(cu_ctx *c, float *dyT, const float *dy, const cshape *s,
                      int cnt)
{
    const size_t len = (size_t)cnt * s->oc * conv_P(s);
    k_transpose<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(dyT, dy, s->oc,
                                                              conv_P(s), cnt);
    CU_LAUNCHED("conv transpose");
}

/* dcols = W^T dyT, then dx (=|+=) col2im(dcols); cols is overwritten. */
static void input_grad(cu_ctx *c, const cshape *s, int cnt, float *dx,
                       const float *W, const float *dyT, float *cols, int acc)
{
    const int K = (int)conv_K(s), cP = (int)(cnt * conv_P(s));
    l2rw__cu_sgemm(c, 1, 0, K, cP, s->oc, 1.0f, W, K, dyT, cP, 0.0f, cols, cP);
    col2im(c, dx, cols, s, cnt, acc);
}

void l2rw__cu_conv_fwd(const cshape *s, int n, float *y, float *ty,
                       const float *x, const float *tx, const float *W,
                       const float *b, const float *tW, const float *tb,
                       float *ws)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || n <= 0) return;
    const int K = (int)conv_K(s), P = (int)conv_P(s), oc = s->oc;
    const size_t in_sz = (size_t)s->ic * s->ih * s->iw;
    const size_t out_sz = (size_t)oc * P;
    const int fused = ty && tx; /* [W tW] [cols(tx); cols(x)] */
    const size_t fixed = fused ? (size_t)oc * 2 * K : 0;
    const cu_ws w = workspace(c, s, ws);
    const int cnt_max = chunk_size(w, "conv forward", fixed,
                                   (size_t)(fused ? 2 : 1) * K * P, n);
    if (cnt_max == 0) return;
    float *w2 = w.p, *cols = w.p + cu_round(fixed);
    if (fused) {
        const size_t row = (size_t)K * sizeof(float);
        l2rw__cu_note(cudaMemcpy2DAsync(w2, 2 * row, W, row, row, oc,
                                        cudaMemcpyDeviceToDevice, c->stream),
                      "conv [W tW]");
        l2rw__cu_note(cudaMemcpy2DAsync(w2 + K, 2 * row, tW, row, row, oc,
                                        cudaMemcpyDeviceToDevice, c->stream),
                      "conv [W tW]");
    }
    for (int i0 = 0; i0 < n; i0 += cnt_max) {
        const int cnt = n - i0 < cnt_max ? n - i0 : cnt_max;
        const int cP = cnt * P;
        float *colsx = fused ? cols + (size_t)K * cP : cols;
        float *yc = y + i0 * out_sz;
        im2col(c, colsx, x + i0 * in_sz, s, cnt);
        l2rw__cu_sgemm_batched(c, 0, 0, oc, P, K, 1.0f, W, K, 0, colsx, cP, P,
                               0.0f, yc, P, (long long)out_sz, cnt);
        if (b) l2rw__cu_bias_add(yc, b, cnt, oc, (size_t)P);
        if (!ty) continue;
        float *tyc = ty + i0 * out_sz;
        if (fused) {
            im2col(c, cols, tx + i0 * in_sz, s, cnt);
            l2rw__cu_sgemm_batched(c, 0, 0, oc, P, 2 * K, 1.0f, w2, 2 * K, 0,
                                   cols, cP, P, 0.0f, tyc, P,
                                   (long long)out_sz, cnt);
        } else {
            l2rw__cu_sgemm_batched(c, 0, 0, oc, P, K, 1.0f, tW, K, 0, colsx,
                                   cP, P, 0.0f, tyc, P, (long long)out_sz,
                                   cnt);
        }
        if (tb) l2rw__cu_bias_add(tyc, tb, cnt, oc, (size_t)P);
    }
}

void l2rw__cu_conv_bwd(const cshape *s, int n, float *dW, float *db, float *dx,
                       const float *dy, const float *x, const float *W,
                       int acc, float *ws)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c) return;
    const int K = (int)conv_K(s), P = (int)conv_P(s), oc = s->oc;
    const size_t in_sz = (size_t)s->ic * s->ih * s->iw;
    const size_t out_sz = (size_t)oc * P;
    if (n <= 0) { /* no examples: zero gradients, as the CPU */
        l2rw__cu_memset(dW, 0, (size_t)oc * K * sizeof *dW);
        if (db) l2rw__cu_bias_grad(db, dy, 0, oc, (size_t)P, 0);
        return;
    }
    const cu_ws w = workspace(c, s, ws);
    const int cnt_max =
        chunk_size(w, "conv backward", 0, (size_t)(K + oc) * P, n);
    if (cnt_max == 0) return;
    for (int i0 = 0; i0 < n; i0 += cnt_max) {
        const int cnt = n - i0 < cnt_max ? n - i0 : cnt_max;
        const int cP = cnt * P;
        float *cols = w.p, *dyT = w.p + cu_round((size_t)K * cP);
        im2col(c, cols, x + i0 * in_sz, s, cnt);
        transpose(c, dyT, dy + i0 * out_sz, s, cnt);
        l2rw__cu_sgemm(c, 0, 1, oc, K, cP, 1.0f, dyT, cP, cols, cP,
                       i0 == 0 ? 0.0f : 1.0f, dW, K);
        if (dx) input_grad(c, s, cnt, dx + i0 * in_sz, W, dyT, cols, acc);
    }
    if (db) l2rw__cu_bias_grad(db, dy, n, oc, (size_t)P, 0);
}

void l2rw__cu_conv_bwd_each(const cshape *s, int n, float *G, size_t ldg,
                            int bias, float *dx, const float *dy,
                            const float *x, const float *W, int acc, float *ws)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || n <= 0) return;
    const int K = (int)conv_K(s), P = (int)conv_P(s), oc = s->oc;
    const size_t in_sz = (size_t)s->ic * s->ih * s->iw;
    const size_t out_sz = (size_t)oc * P, nw = (size_t)oc * K;
    const cu_ws w = workspace(c, s, ws);
    const int cnt_max = chunk_size(w, "conv per-example backward", 0,
                                   (size_t)(K + (dx ? oc : 0)) * P, n);
    if (cnt_max == 0) return;
    for (int i0 = 0; i0 < n; i0 += cnt_max) {
        const int cnt = n - i0 < cnt_max ? n - i0 : cnt_max;
        const int cP = cnt * P;
        float *cols = w.p, *dyT = w.p + cu_round((size_t)K * cP);
        const float *dyc = dy + i0 * out_sz;
        float *Gc = G + (size_t)i0 * ldg;
        im2col(c, cols, x + i0 * in_sz, s, cnt);
        l2rw__cu_sgemm_batched(c, 0, 1, oc, K, P, 1.0f, dyc, P,
                               (long long)out_sz, cols, cP, P, 0.0f, Gc, K,
                               (long long)ldg, cnt);
        if (bias) {
            const size_t len = (size_t)cnt * oc;
            k_row_sums<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(
                Gc, ldg, nw, dyc, oc, (size_t)P, cnt);
            CU_LAUNCHED("conv per-example bias");
        }
        if (!dx) continue;
        transpose(c, dyT, dyc, s, cnt);
        input_grad(c, s, cnt, dx + i0 * in_sz, W, dyT, cols, acc);
    }
}
