/* One decode step of a Llama / Qwen2 / Qwen3 decoder for one sequence, in one C call.
 *
 * Built and loaded by labkit/bench/native.py (which explains the design); the Python side packs the
 * weights, owns every buffer and checks shapes. Nothing here allocates.
 *
 * Weight layout of every linear (out N, in K), "blocked": N padded to a multiple of 16 rows, stored
 * as (N/16, K, 16) so that the 16 outputs of a block are one vector register and each step along K
 * reads 16 consecutive weights. Four independent accumulators along K hide the FMA latency.
 * Kinds: float32 weights, int8 codes, fp8 e4m3 / e5m2 codes (raw bytes). fp8 codes are decoded with
 * integer shifts: the byte, sign-extended and shifted left, lands sign/exponent/mantissa in a
 * float32's bit positions with the exponent bias off by 2^120 (e4m3) or 2^112 (e5m2); the Python
 * side folds that power of two into the scales (exact: it is a power of two).
 * Scales: one per row (per-tensor scales are expanded to rows), or per K-group: (N/16, G, 16).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define BLK 16
/* Below this many weights a GEMV runs on one thread: waking a second costs more than it saves. */
#define PARALLEL_MIN_WEIGHTS (1 << 20)

enum { KIND_F32 = 0, KIND_INT8 = 1, KIND_E4M3 = 2, KIND_E5M2 = 3 };

typedef struct {
    int32_t kind, n, k, group; /* group 0: row scales (or none for float32) */
    int32_t bf16_io;           /* int8: x and the code sum rounded to bfloat16 (as _weight_int8pack_mm);
                                  2: the product with the (bf16) per-tensor scale rounded to bfloat16 too */
    int32_t pad_;
    const void *w;
    const float *s;
    const float *bias;         /* (n,) or NULL */
} Lin;

typedef struct {
    int32_t n_layers, hidden, n_heads, n_kv, head_dim, inter, vocab, max_len, qk_norm, nthreads;
    float eps, attn_scale;
    const float *embed, *final_norm, *cos, *sin;
    float *kcache, *vcache; /* (layers, kv, max_len, head_dim) */
    float *x, *h, *xq, *qkv, *att, *scores, *o, *gu, *act, *logits;
    const float **attn_norm, **mlp_norm, **q_norm, **k_norm;
    const Lin *qkv_proj, *o_proj, *gate_up, *down, *lm_head;
} Model;

static inline float bf16_round(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u; /* round to nearest even */
    memcpy(&v, &u, 4);
    return v;
}

/* GCC/Clang vector extensions: one 16-float vector is one AVX-512 register (two AVX2 ones). */
typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
typedef uint32_t vu __attribute__((vector_size(64)));
typedef int8_t vb __attribute__((vector_size(16)));

static inline vf load_f32(const void *p, size_t i) {
    vf v;
    memcpy(&v, (const float *)p + i, sizeof v);
    return v;
}

#ifdef __AVX512F__
#include <immintrin.h>
/* GCC 12 lowers the generic int8 -> int32 vector conversion to scalar code: use the instruction. */
static inline vi widen_bytes(const void *p, size_t i) {
    __m512i v = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)((const int8_t *)p + i)));
    vi out;
    memcpy(&out, &v, sizeof out);
    return out;
}
#else
static inline vi widen_bytes(const void *p, size_t i) {
    vb v;
    memcpy(&v, (const int8_t *)p + i, sizeof v);
    return __builtin_convertvector(v, vi);
}
#endif

static inline vf load_int8(const void *p, size_t i) { return __builtin_convertvector(widen_bytes(p, i), vf); }

static inline vf load_e4m3(const void *p, size_t i) { /* sign-extended byte << 20, keep sign + e4m3 bits */
    return (vf)(((vu)widen_bytes(p, i) << 20) & 0x87F00000u);
}

static inline vf load_e5m2(const void *p, size_t i) {
    return (vf)(((vu)widen_bytes(p, i) << 21) & 0x8FE00000u);
}

/* out[16] = sum over k in [k0, k1) of x[k] * W[k, 0:16] for one block; four accumulators. */
#define BLOCK_SUM(NAME, LOAD)                                                              \
    static void NAME(const void *w, const float *x, int k0, int k1, float *out) {          \
        vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                         \
        int k = k0;                                                                        \
        for (; k + 4 <= k1; k += 4) {                                                      \
            const size_t r = (size_t)k * BLK;                                              \
            a0 += x[k] * LOAD(w, r);                                                       \
            a1 += x[k + 1] * LOAD(w, r + BLK);                                             \
            a2 += x[k + 2] * LOAD(w, r + 2 * BLK);                                         \
            a3 += x[k + 3] * LOAD(w, r + 3 * BLK);                                         \
        }                                                                                  \
        for (; k < k1; k++) a0 += x[k] * LOAD(w, (size_t)k * BLK);                         \
        vf sum = (a0 + a1) + (a2 + a3);                                                    \
        memcpy(out, &sum, sizeof sum);                                                     \
    }

BLOCK_SUM(sum_f32, load_f32)
BLOCK_SUM(sum_int8, load_int8)
BLOCK_SUM(sum_e4m3, load_e4m3)
BLOCK_SUM(sum_e5m2, load_e5m2)

static void block_sum(int kind, const void *w, const float *x, int k0, int k1, float *out) {
    switch (kind) {
    case KIND_F32: sum_f32(w, x, k0, k1, out); break;
    case KIND_INT8: sum_int8(w, x, k0, k1, out); break;
    case KIND_E4M3: sum_e4m3(w, x, k0, k1, out); break;
    default: sum_e5m2(w, x, k0, k1, out); break;
    }
}

/* y (N) = W x (+ bias); x (K) */
static void gemv(const Lin *l, const float *x, float *y, int nthreads) {
    const int nb = (l->n + BLK - 1) / BLK, k = l->k;
    const size_t esize = l->kind == KIND_F32 ? 4 : 1;
    const int groups = l->group ? (k + l->group - 1) / l->group : 0;
    const int par = nthreads > 1 && (size_t)l->n * (size_t)k >= PARALLEL_MIN_WEIGHTS;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (par)
    for (int b = 0; b < nb; b++) {
        const char *wb = (const char *)l->w + (size_t)b * k * BLK * esize;
        float acc[BLK], part[BLK];
        if (!l->group) {
            block_sum(l->kind, wb, x, 0, k, acc);
            if (l->s) {
                const float *s = l->s + (size_t)b * BLK;
                for (int j = 0; j < BLK; j++) acc[j] = (l->bf16_io ? bf16_round(acc[j]) : acc[j]) * s[j];
                if (l->bf16_io == 2)
                    for (int j = 0; j < BLK; j++) acc[j] = bf16_round(acc[j]);
            }
        } else {
            for (int j = 0; j < BLK; j++) acc[j] = 0.0f;
            for (int g = 0; g < groups; g++) {
                const int k0 = g * l->group, k1 = k0 + l->group < k ? k0 + l->group : k;
                const float *s = l->s + ((size_t)b * groups + g) * BLK;
                block_sum(l->kind, wb, x, k0, k1, part);
                for (int j = 0; j < BLK; j++) acc[j] += part[j] * s[j];
            }
        }
        const int rows = l->n - b * BLK < BLK ? l->n - b * BLK : BLK;
        for (int j = 0; j < rows; j++) y[b * BLK + j] = acc[j] + (l->bias ? l->bias[b * BLK + j] : 0.0f);
    }
}

static void linear(const Model *m, const Lin *l, const float *x, float *y) {
    if (l->bf16_io) { /* the eager int8 kernel sees bfloat16 activations */
        for (int i = 0; i < l->k; i++) m->xq[i] = bf16_round(x[i]);
        x = m->xq;
    }
    gemv(l, x, y, m->nthreads);
}

static void rmsnorm(const float *x, const float *w, int n, float eps, float *out) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    const float r = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++) out[i] = w[i] * (x[i] * r);
}

static void rope(float *v, const float *cos, const float *sin, int d) {
    const int half = d / 2;
    for (int i = 0; i < half; i++) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cos[i] - b * sin[i];
        v[i + half] = b * cos[i + half] + a * sin[i + half];
    }
}

/* Advance one token at position pos (the cache holds positions 0..pos-1); returns argmax of the logits. */
int64_t labkit_decode_step(const Model *m, int64_t token, int32_t pos) {
    const int H = m->hidden, D = m->head_dim, nh = m->n_heads, nkv = m->n_kv, T = m->max_len;
    const int qdim = nh * D, kvdim = nkv * D, group = nh / nkv;
    memcpy(m->x, m->embed + (size_t)token * H, sizeof(float) * H);
    for (int l = 0; l < m->n_layers; l++) {
        rmsnorm(m->x, m->attn_norm[l], H, m->eps, m->h);
        linear(m, &m->qkv_proj[l], m->h, m->qkv);
        float *q = m->qkv, *k = m->qkv + qdim, *v = m->qkv + qdim + kvdim;
        const float *c = m->cos + (size_t)pos * D, *s = m->sin + (size_t)pos * D;
        for (int hh = 0; hh < nh; hh++) {
            if (m->qk_norm) rmsnorm(q + hh * D, m->q_norm[l], D, m->eps, q + hh * D);
            rope(q + hh * D, c, s, D);
        }
        for (int hh = 0; hh < nkv; hh++) {
            if (m->qk_norm) rmsnorm(k + hh * D, m->k_norm[l], D, m->eps, k + hh * D);
            rope(k + hh * D, c, s, D);
            float *kc = m->kcache + (((size_t)l * nkv + hh) * T + pos) * D;
            float *vc = m->vcache + (((size_t)l * nkv + hh) * T + pos) * D;
            memcpy(kc, k + hh * D, sizeof(float) * D);
            memcpy(vc, v + hh * D, sizeof(float) * D);
        }
        for (int hh = 0; hh < nh; hh++) {
            const float *qh = q + hh * D;
            const float *kc = m->kcache + ((size_t)l * nkv + hh / group) * T * D;
            const float *vc = m->vcache + ((size_t)l * nkv + hh / group) * T * D;
            float mx = -INFINITY, denom = 0.0f;
            for (int t = 0; t <= pos; t++) {
                float d = 0.0f;
                for (int i = 0; i < D; i++) d += qh[i] * kc[(size_t)t * D + i];
                m->scores[t] = d * m->attn_scale;
                if (m->scores[t] > mx) mx = m->scores[t];
            }
            for (int t = 0; t <= pos; t++) {
                m->scores[t] = expf(m->scores[t] - mx);
                denom += m->scores[t];
            }
            float *out = m->att + hh * D;
            for (int i = 0; i < D; i++) out[i] = 0.0f;
            for (int t = 0; t <= pos; t++) {
                const float p = m->scores[t] / denom;
                for (int i = 0; i < D; i++) out[i] += p * vc[(size_t)t * D + i];
            }
        }
        linear(m, &m->o_proj[l], m->att, m->o);
        for (int i = 0; i < H; i++) m->x[i] += m->o[i];
        rmsnorm(m->x, m->mlp_norm[l], H, m->eps, m->h);
        linear(m, &m->gate_up[l], m->h, m->gu);
        for (int i = 0; i < m->inter; i++) {
            const float g = m->gu[i];
            m->act[i] = g / (1.0f + expf(-g)) * m->gu[m->inter + i];
        }
        linear(m, &m->down[l], m->act, m->o);
        for (int i = 0; i < H; i++) m->x[i] += m->o[i];
    }
    rmsnorm(m->x, m->final_norm, H, m->eps, m->h);
    linear(m, m->lm_head, m->h, m->logits);
    int64_t best = 0;
    for (int i = 1; i < m->vocab; i++)
        if (m->logits[i] > m->logits[best]) best = i;
    return best;
}
