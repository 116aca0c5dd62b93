/* One decode step of a Llama / Qwen2 / Qwen3 decoder for one sequence, in one C call.
 *
 * Built and loaded by labkit/bench/native.py (which explains the design); the Python side packs the
 * weights, owns every buffer and checks shapes. Nothing here allocates.
 *
 * Weight layout of every linear (out N, in K), "blocked": N padded to a multiple of 16 rows, stored
 * as (N/16, K, 16) so that the 16 outputs of a block are one vector register and each step along K
 * reads 16 consecutive weights. Independent accumulators along K (and, for 8-bit codes, a software
 * prefetch) keep the stream near the read bandwidth (see BLOCK_SUM).
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
/* Below this many weight bytes a GEMV runs on one thread: handing out chunks costs more than it saves. */
#define PARALLEL_MIN_BYTES (128 * 1024)

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

/* How each kind streams its weights, measured on the lab's 2-core Sapphire Rapids VM (December 2026,
 * one thread, a 141 MB int8 / 566 MB float32 GEMV, best of 20):
 * - float32: four accumulators and the hardware prefetcher alone read 13.0-13.3 GB/s; eight
 *   accumulators with a software prefetch read less (10.9-12.0), so the baseline keeps the simple loop;
 * - 8-bit codes: four accumulators and no hint read only 4.5-8 GB/s (decoding a byte costs more
 *   instructions than the float loop's load); eight accumulators and a prefetch into L2 4 KiB ahead,
 *   10.6-11.3 GB/s (L1 hint 2 KiB ahead: 10.5-10.9; non-temporal: 8.2-8.4).
 * NACC must divide the unrolled step; PF is the distance in bytes (0: no hint). */
#define BLOCK_SUM(NAME, LOAD, ESIZE, NACC, PF)                                             \
    static void NAME(const void *w, const float *x, int k0, int k1, float *out) {          \
        vf a[NACC];                                                                        \
        for (int j = 0; j < NACC; j++) a[j] = (vf){0};                                     \
        int k = k0;                                                                        \
        for (; k + NACC <= k1; k += NACC) {                                                \
            const size_t r = (size_t)k * BLK;                                              \
            if (PF) {                                                                      \
                const char *ahead = (const char *)w + r * (ESIZE) + (PF);                  \
                for (int p = 0; p < NACC * BLK * (ESIZE); p += 64) __builtin_prefetch(ahead + p, 0, 2); \
            }                                                                              \
            for (int j = 0; j < NACC; j++) a[j] += x[k + j] * LOAD(w, r + (size_t)j * BLK); \
        }                                                                                  \
        for (; k < k1; k++) a[0] += x[k] * LOAD(w, (size_t)k * BLK);                       \
        vf sum = a[0];                                                                     \
        for (int j = 1; j < NACC; j++) sum += a[j];                                        \
        memcpy(out, &sum, sizeof sum);                                                     \
    }

BLOCK_SUM(sum_f32, load_f32, 4, 4, 0)
BLOCK_SUM(sum_int8, load_int8, 1, 8, 4096)
BLOCK_SUM(sum_e4m3, load_e4m3, 1, 8, 4096)
BLOCK_SUM(sum_e5m2, load_e5m2, 1, 8, 4096)

static void block_sum(int kind, const void *w, const float *x, int k0, int k1, float *out) {
    switch (kind) {
    case KIND_F32: sum_f32(w, x, k0, k1, out); break;
    case KIND_INT8: sum_int8(w, x, k0, k1, out); break;
    case KIND_E4M3: sum_e4m3(w, x, k0, k1, out); break;
    default: sum_e5m2(w, x, k0, k1, out); break;
    }
}

/* y rows of row blocks [b0, b1) = W x (+ bias); x (K) */
static void gemv_blocks(const Lin *l, const float *x, float *y, int b0, int b1) {
    const int k = l->k;
    const size_t esize = l->kind == KIND_F32 ? 4 : 1;
    const int groups = l->group ? (k + l->group - 1) / l->group : 0;
    for (int b = b0; b < b1; b++) {
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

/* ---- threads: a pool that never waits for a thread that has not started work ----------------
 *
 * An OpenMP parallel-for ends in a barrier: every thread must arrive. On a busy machine the second
 * thread is often off its core, and each of a step's ~120 GEMVs then waits for the scheduler to
 * bring it back — decode with 2 threads ran slower than with 1 (6.8 vs 43 tok/s measured at load 5).
 * Here a GEMV is cut into chunks of about CHUNK_BYTES of weights; the calling thread and the
 * pool's workers claim chunks one at a time from one atomic word (job generation << 32 | next
 * chunk) and the caller waits only for chunks that were claimed. A worker that is off its core
 * simply claims nothing; the caller does the whole GEMV. Idle workers spin for SPIN_NS, then
 * sleep on a futex until the next job.
 * Chunks are small (64 KiB) and every GEMV of 128 KiB or more is shared: on a quiet machine this
 * took SmolLM2's 2-thread decode from 28 to 38 tok/s (float32) and 98 to 133 (int8 per row) over
 * sharing only GEMVs of a million weights or more in 256 KiB chunks.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ volatile("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define MAX_WORKERS 63
#define CHUNK_BYTES (64 * 1024)
#define SPIN_NS 200000L

typedef struct {
    const Lin *l;
    const float *x;
    float *y;
    int nb, chunk, nchunks, nworkers;
} Job;

static struct {
    pthread_mutex_t submit;          /* one job at a time (ctypes calls may come from several threads) */
    Job job;                         /* valid while its chunks are unfinished */
    _Atomic uint64_t claim;          /* generation << 32 | next chunk index */
    _Atomic uint32_t gen;            /* futex word: the current generation */
    _Atomic int done;                /* chunks finished in this generation */
    _Atomic int sleepers;
    _Atomic int64_t by_workers;      /* chunks the workers ran, ever (tests check the pool is used) */
    int started;
} pool = {.submit = PTHREAD_MUTEX_INITIALIZER};

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* claim and run chunks of generation g until none is left (or the generation moved on) */
static void run_chunks(uint32_t g, int worker) {
    for (;;) {
        uint64_t c = atomic_load_explicit(&pool.claim, memory_order_acquire);
        if ((uint32_t)(c >> 32) != g) return;
        const uint32_t i = (uint32_t)c;
        const Job *j = &pool.job; /* stable: the caller cannot finish generation g before our chunk */
        if (worker >= j->nworkers || (int)i >= j->nchunks) return; /* the caller is worker -1 */
        if (!atomic_compare_exchange_weak_explicit(&pool.claim, &c, c + 1, memory_order_acq_rel, memory_order_acquire))
            continue;
        const int b0 = (int)i * j->chunk, b1 = b0 + j->chunk < j->nb ? b0 + j->chunk : j->nb;
        gemv_blocks(j->l, j->x, j->y, b0, b1);
        if (worker >= 0) atomic_fetch_add_explicit(&pool.by_workers, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
    }
}

static void *worker_main(void *arg) {
    const int id = (int)(intptr_t)arg;
    uint32_t seen = atomic_load(&pool.gen);
    for (;;) {
        const long t0 = now_ns();
        uint32_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen) {
            CPU_RELAX();
            if (++spins % 256 == 0 && now_ns() - t0 > SPIN_NS) {
                atomic_fetch_add(&pool.sleepers, 1);
                if (atomic_load(&pool.gen) == seen)
                    syscall(SYS_futex, &pool.gen, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
                atomic_fetch_sub(&pool.sleepers, 1);
            }
        }
        seen = g;
        run_chunks(g, id);
    }
    return NULL;
}

static void start_workers(int n) {
    for (; pool.started < n && pool.started < MAX_WORKERS; pool.started++) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &a, worker_main, (void *)(intptr_t)pool.started) != 0) break;
        pthread_attr_destroy(&a);
    }
}

/* y (N) = W x (+ bias); x (K) */
static void gemv(const Lin *l, const float *x, float *y, int nthreads) {
    const int nb = (l->n + BLK - 1) / BLK;
    const size_t esize = l->kind == KIND_F32 ? 4 : 1;
    if (nthreads <= 1 || (size_t)l->n * (size_t)l->k * esize < PARALLEL_MIN_BYTES || pthread_mutex_trylock(&pool.submit) != 0) {
        gemv_blocks(l, x, y, 0, nb);
        return;
    }
    start_workers(nthreads - 1);
    size_t per_block = (size_t)l->k * BLK * esize, chunk = CHUNK_BYTES / per_block;
    if (chunk < 1) chunk = 1;
    pool.job = (Job){l, x, y, nb, (int)chunk, (int)((nb + chunk - 1) / chunk), nthreads - 1};
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    const uint32_t g = atomic_load(&pool.gen) + 1;
    atomic_store_explicit(&pool.claim, (uint64_t)g << 32, memory_order_release);
    atomic_store(&pool.gen, g); /* seq_cst: pairs with the workers' sleepers / gen check */
    if (atomic_load(&pool.sleepers) > 0) syscall(SYS_futex, &pool.gen, FUTEX_WAKE_PRIVATE, MAX_WORKERS, NULL, NULL, 0);
    run_chunks(g, -1); /* returns when every chunk is claimed; then wait for those others claimed */
    while (atomic_load_explicit(&pool.done, memory_order_acquire) < pool.job.nchunks) CPU_RELAX();
    pthread_mutex_unlock(&pool.submit);
}

/* the GEMV alone (tests, the bandwidth probe): y (N) = W x with `nthreads` threads */
void labkit_gemv(const Lin *l, const float *x, float *y, int32_t nthreads) { gemv(l, x, y, nthreads); }

int64_t labkit_chunks_by_workers(void) { return atomic_load(&pool.by_workers); }

static void linear(const Model *m, const Lin *l, const float *x, float *y) {
    if (l->bf16_io) { /* the eager int8 kernel sees bfloat16 activations */
        for (int i = 0; i < l->k; i++) m->xq[i] = bf16_round(x[i]);
        x = m->xq;
    }
    gemv(l, x, y, m->nthreads);
}

/* one of the model's linears as a decode step runs it (the prefill's lm_head): y = l(x) */
void labkit_linear(const Model *m, const Lin *l, const float *x, float *y) { linear(m, l, x, y); }

/* sum of a[i] * b[i]: 16-wide partial sums (a sequential float sum cannot be vectorized) */
static inline float dot(const float *a, const float *b, int n) {
    vf acc = {0};
    int i = 0;
    for (; i + BLK <= n; i += BLK) acc += load_f32(a, i) * load_f32(b, i);
    float d = 0.0f;
    for (int j = 0; j < BLK; j++) d += acc[j];
    for (; i < n; i++) d += a[i] * b[i];
    return d;
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
                m->scores[t] = dot(qh, kc + (size_t)t * D, D) * m->attn_scale;
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
