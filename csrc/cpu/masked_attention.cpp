// Masked attention on the CPU; see hepgen/masked_attention.h for the maths.
//
// Forward and backward: one OpenMP task per sequence. A task first copies the sequence's
// query rows and its real keys and values, head by head, into contiguous scratch in position
// order ("compaction": padded keys are skipped and never read), reading the inputs in memory
// order. After that every inner loop is a unit-stride loop over keys or over the head
// dimension, the hot ones written as 4-row x 8-lane register tiles, and causal masking costs
// nothing: the real keys query i may see are exactly a prefix of the compacted list.
// Decode: one task per (sequence, head).
#include "hepgen/masked_attention.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "op_args.h"
#include "parallel.h"

#ifdef HEPGEN_WITH_OPENMP
#define HEPGEN_SIMD_SUM(var) HEPGEN_PRAGMA(omp simd reduction(+ : var))
#define HEPGEN_SIMD_MAX(var) HEPGEN_PRAGMA(omp simd reduction(max : var))
#else
#define HEPGEN_SIMD_SUM(var)
#define HEPGEN_SIMD_MAX(var)
#endif

// The per-head kernels are compiled twice on x86-64 with GCC/Clang: for the portable baseline
// and for AVX2+FMA, chosen at run time. A distributable build stays portable (no -march) and
// still gets 8-wide FMA on the machines that have it.
#define HEPGEN_INLINE inline __attribute__((always_inline))
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define HEPGEN_AVX2_CLONE 1
#define HEPGEN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace hepgen {
namespace {

struct S4 {
  int64_t b, h, l, d;
};

// exp of n values in place. For float a vectorisable 2^t (t = x log2 e) from a degree-7
// polynomial (about 1 ulp): glibc's scalar expf would keep the loop scalar and dominate the
// cost of short rows. Inputs here are finite scores minus their maximum, so t <= ~0; the
// exponent is clamped at -126, where exp is ~1e-38 (a weight that cannot change a float
// sum). The clamp is on the integer exponent: a float compare would stop GCC vectorising
// the loop (it may trap under the default -ftrapping-math).
HEPGEN_INLINE void exp_inplace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float t = x[i] * 1.44269504088896341f;
    const float r = (t + 12582912.f) - 12582912.f;    // round to nearest integer (1.5 * 2^23)
    const float f = (t - r) * 0.693147180559945309f;  // |f| <= ln2 / 2: e^f by Taylor
    float p = 1.f / 5040.f;
    p = p * f + 1.f / 720.f;
    p = p * f + 1.f / 120.f;
    p = p * f + 1.f / 24.f;
    p = p * f + 1.f / 6.f;
    p = p * f + 0.5f;
    p = p * f + 1.f;
    p = p * f + 1.f;
    int32_t e = static_cast<int32_t>(r);
    e = e < -126 ? -126 : e;
    const int32_t bits = (e + 127) << 23;  // 2^e
    float two_r;
    std::memcpy(&two_r, &bits, sizeof two_r);
    x[i] = p * two_r;
  }
}

HEPGEN_INLINE void exp_inplace(double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
}

constexpr int64_t kRows = 4;  // query rows per block in the forward pass
constexpr int64_t kLane = 8;  // key counts are padded to this (one AVX2 float vector)

// Eight lanes as one value (GCC/Clang vector extensions): the register tiles of the forward
// micro-kernels are written with these rather than left to the auto-vectoriser, which turns
// small fixed-size tiles into shuffles and stack spills. A target without 256-bit vectors
// splits them into narrower ones.
template <typename T> struct Lanes;
template <> struct Lanes<float> {
  typedef float type __attribute__((vector_size(32)));
};
template <> struct Lanes<double> {
  typedef double type __attribute__((vector_size(64)));
};
template <typename T> using Vec = typename Lanes<T>::type;
template <typename T> HEPGEN_INLINE Vec<T> load8(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T> HEPGEN_INLINE void store8(T* p, Vec<T> v) { std::memcpy(p, &v, sizeof v); }

// s[r][j] = sum_d rows[r][d] * xt[d][j] for r < kRows, j < jp (a multiple of kLane):
// kRows x kLane accumulators stay in registers over the whole reduction.
template <typename T>
HEPGEN_INLINE void tile_rows_times_t(const T* rows, int64_t Dh, const T* xt, int64_t ld, int64_t jp, T* s) {
  for (int64_t j0 = 0; j0 < jp; j0 += kLane) {
    Vec<T> t0 = {}, t1 = {}, t2 = {}, t3 = {};
    const T* xd = xt + j0;
    for (int64_t d = 0; d < Dh; ++d, xd += ld) {
      const Vec<T> x = load8(xd);
      t0 += rows[d] * x;
      t1 += rows[Dh + d] * x;
      t2 += rows[2 * Dh + d] * x;
      t3 += rows[3 * Dh + d] * x;
    }
    store8(s + j0, t0);
    store8(s + ld + j0, t1);
    store8(s + 2 * ld + j0, t2);
    store8(s + 3 * ld + j0, t3);
  }
}

// acc[r][d] = sum_{j < n} s[r][j] * x[j][d] for r < kRows, d < dp (row pitch of x and acc).
template <typename T>
HEPGEN_INLINE void tile_weights_times_rows(const T* s, int64_t ld, const T* x, int64_t dp, int64_t n, T* acc) {
  for (int64_t d0 = 0; d0 < dp; d0 += kLane) {
    Vec<T> a0 = {}, a1 = {}, a2 = {}, a3 = {};
    const T* xj = x + d0;
    for (int64_t j = 0; j < n; ++j, xj += dp) {
      const Vec<T> v = load8(xj);
      a0 += s[j] * v;
      a1 += s[ld + j] * v;
      a2 += s[2 * ld + j] * v;
      a3 += s[3 * ld + j] * v;
    }
    store8(acc + d0, a0);
    store8(acc + dp + d0, a1);
    store8(acc + 2 * dp + d0, a2);
    store8(acc + 3 * dp + d0, a3);
  }
}

// dst_t[d][j] += sum_r rows[r][d] * s[r][j] for d < Dh, j < jp: a rank-kRows update of a
// transposed [Dh][ld] gradient.
template <typename T>
HEPGEN_INLINE void tile_add_outer(T* dst_t, int64_t ld, const T* rows, int64_t Dh, const T* s, int64_t jp) {
  for (int64_t d = 0; d < Dh; ++d) {
    T* row = dst_t + d * ld;
    const T c0 = rows[d], c1 = rows[Dh + d], c2 = rows[2 * Dh + d], c3 = rows[3 * Dh + d];
    for (int64_t j0 = 0; j0 < jp; j0 += kLane) {
      Vec<T> x = load8(row + j0);
      x += c0 * load8(s + j0) + c1 * load8(s + ld + j0) + c2 * load8(s + 2 * ld + j0) + c3 * load8(s + 3 * ld + j0);
      store8(row + j0, x);
    }
  }
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Scratch of one task, reused across the (sequence, head) pairs a thread handles. Transposed
// buffers have leading dimension ld = L rounded up to kLane, so loops over keys can run to a
// multiple of kLane over zero padding instead of ending in a scalar remainder.
template <typename T> struct Scratch {
  int64_t ld;
  std::vector<int64_t> pos;  // positions of the real keys, increasing
  std::vector<T> kt, vt;     // [Dh][ld]: real keys / values, transposed (key index fastest)
  int64_t dp;                // Dh rounded up to kLane: row pitch of v and acc
  std::vector<T> k;          // [L][dp]: real keys, row-major, zero beyond Dh (backward)
  std::vector<T> v;          // [L][dp]: real values, row-major, zero beyond Dh
  std::vector<T> s;          // [kRows][ld]: scores, then probabilities
  std::vector<T> ds;         // [kRows][ld]: dP, then dS (backward)
  std::vector<T> g;          // [kRows][Dh]: a block of grad_out rows (backward)
  std::vector<T> acc;        // [kRows][dp]
  std::vector<T> dkt, dvt;   // [Dh][ld]: key and value gradients, transposed
  std::vector<T> qall;       // [round_up(L, kRows)][Dh]: all scaled query rows
  int64_t n_real = 0;        // real keys gathered by gather_sequence
  Scratch(int64_t L, int64_t Dh, bool backward)
      : ld(round_up(L > 0 ? L : 1, kLane)),
        pos(L),
        kt(ld * Dh, T(0)),
        vt(backward ? ld * Dh : 0, T(0)),
        dp(round_up(Dh, kLane)),
        k(backward ? L * round_up(Dh, kLane) : 0, T(0)),
        v(L * round_up(Dh, kLane), T(0)),
        s(kRows * ld),
        ds(backward ? kRows * ld : 0),
        g(backward ? kRows * Dh : 0),
        acc(kRows * round_up(Dh, kLane)),
        dkt(backward ? ld * Dh : 0),
        dvt(backward ? ld * Dh : 0),
        qall(round_up(L, kRows) * Dh, T(0)) {}
};

// Softmax of s[0..n) in place; returns the log-sum-exp when asked (a log per row).
template <typename T, bool kWantLse = true> HEPGEN_INLINE T softmax_inplace(T* s, int64_t n) {
  T m = s[0];
  HEPGEN_SIMD_MAX(m)
  for (int64_t j = 1; j < n; ++j) m = s[j] > m ? s[j] : m;
  for (int64_t j = 0; j < n; ++j) s[j] -= m;
  exp_inplace(s, n);
  T sum = T(0);
  HEPGEN_SIMD_SUM(sum)
  for (int64_t j = 0; j < n; ++j) sum += s[j];
  const T inv = T(1) / sum;
  for (int64_t j = 0; j < n; ++j) s[j] *= inv;
  return kWantLse ? m + std::log(sum) : T(0);
}

// Softmax of s[0..n) in place over a row of jp >= n entries (jp a multiple of kLane), with
// s[n..jp) set to 0; returns the log-sum-exp. Every loop runs over whole vectors.
template <typename T> HEPGEN_INLINE T softmax_tile(T* s, int64_t n, int64_t jp) {
  // The tail first holds a copy of a real score, so the maximum can run over whole vectors,
  // then a finite value far below the maximum: exp gives ~0 there (set exactly to 0 below)
  // and the float-to-int conversion inside exp_inplace stays in range.
  for (int64_t j = n; j < jp; ++j) s[j] = s[0];
  T m = s[0];
  HEPGEN_SIMD_MAX(m)
  for (int64_t j = 0; j < jp; ++j) m = s[j] > m ? s[j] : m;
  for (int64_t j = n; j < jp; ++j) s[j] = m - T(200);
  for (int64_t j = 0; j < jp; ++j) s[j] -= m;
  exp_inplace(s, jp);
  for (int64_t j = n; j < jp; ++j) s[j] = T(0);  // exactly 0, whatever exp made of the fill
  T sum = T(0);
  HEPGEN_SIMD_SUM(sum)
  for (int64_t j = 0; j < jp; ++j) sum += s[j];
  const T inv = T(1) / sum;
  for (int64_t j = 0; j < jp; ++j) s[j] *= inv;
  return m + std::log(sum);
}

// Gathers every head of sequence b for the forward pass: scaled query rows, and the real
// keys and values compacted. The loops follow memory order: token-major for views of a
// [B, L, H, Dh] projection (the usual input), head-major for a [B, H, L, Dh] layout.
template <typename T> void gather_sequence(const T* q, S4 qs, const T* k, S4 ks, const T* v, S4 vs, const uint8_t* mask,
                                           const int64_t* ms, int64_t b, int64_t H, int64_t L, int64_t Dh, T scale,
                                           bool backward, Scratch<T>* ws) {
  auto gather = [&](int64_t h, int64_t j) {
    Scratch<T>& w = ws[h];
    const T* qj = q + b * qs.b + h * qs.h + j * qs.l;
    T* qrow = w.qall.data() + j * Dh;
    for (int64_t d = 0; d < Dh; ++d) qrow[d] = qj[d * qs.d] * scale;
    if (mask && !mask[b * ms[0] + j * ms[1]]) return;
    const int64_t n = w.n_real++;
    const T* kj = k + b * ks.b + h * ks.h + j * ks.l;
    const T* vj = v + b * vs.b + h * vs.h + j * vs.l;
    T* vrow = w.v.data() + n * w.dp;
    T* kt = w.kt.data();
    for (int64_t d = 0; d < Dh; ++d) vrow[d] = vj[d * vs.d];
    for (int64_t d = 0; d < Dh; ++d) kt[d * w.ld + n] = kj[d * ks.d];
    if (backward) {
      T* krow = w.k.data() + n * w.dp;
      T* vt = w.vt.data();
      for (int64_t d = 0; d < Dh; ++d) krow[d] = kj[d * ks.d];
      for (int64_t d = 0; d < Dh; ++d) vt[d * w.ld + n] = vj[d * vs.d];
    }
    w.pos[n] = j;
  };
  for (int64_t h = 0; h < H; ++h) ws[h].n_real = 0;
  if (ks.l > ks.h) {  // tokens outermost in memory
    for (int64_t j = 0; j < L; ++j)
      for (int64_t h = 0; h < H; ++h) gather(h, j);
  } else {
    for (int64_t h = 0; h < H; ++h)
      for (int64_t j = 0; j < L; ++j) gather(h, j);
  }
  for (int64_t h = 0; h < H; ++h) {  // zero padding: key columns to a multiple of kLane
    Scratch<T>& w = ws[h];
    const int64_t n = w.n_real, padded = round_up(n, kLane) < w.ld ? round_up(n, kLane) : w.ld;
    for (int64_t d = 0; d < Dh; ++d)
      for (int64_t j = n; j < padded; ++j) {
        w.kt[d * w.ld + j] = T(0);
        if (backward) w.vt[d * w.ld + j] = T(0);
      }
  }
}

// One (sequence, head): query rows in blocks of kRows, so every key and value row loaded
// from scratch feeds kRows multiply-adds.
template <typename T> HEPGEN_INLINE void forward_head(const T* q, S4 qs, const T* k, S4 ks, const T* v, S4 vs,
                                                      const uint8_t* mask, const int64_t* ms, int64_t bh, int64_t H,
                                                      int64_t L, int64_t Dh, bool causal, T scale, T* out, T* lse,
                                                      Scratch<T>& w) {
  // q, k, v and the mask were gathered into w by gather_sequence.
  (void)q, (void)qs, (void)k, (void)ks, (void)v, (void)vs, (void)mask, (void)ms, (void)H, (void)scale;
  const int64_t ld = w.ld;
  const int64_t n = w.n_real;
  const T* kt = w.kt.data();
  const T* vr = w.v.data();
  T* sb = w.s.data();
  T* acc = w.acc.data();
  int64_t seen = causal ? 0 : n;  // real keys the current query may see: a prefix
  for (int64_t i0 = 0; i0 < L; i0 += kRows) {
    const int64_t rows = L - i0 < kRows ? L - i0 : kRows;
    int64_t seen_r[kRows];
    for (int64_t r = 0; r < kRows; ++r) {
      if (causal && r < rows)
        while (seen < n && w.pos[seen] <= i0 + r) ++seen;
      seen_r[r] = r < rows ? seen : 0;
    }
    const T* qb = w.qall.data() + i0 * Dh;  // kRows rows, zero beyond L
    const int64_t jmax = seen;              // the block's last row sees the most
    if (jmax > 0) {
      // S = Qblock K^T over the first round_up(jmax, kLane) keys (zero padding beyond n), in
      // kRows x kLane register tiles accumulated over the whole head dimension.
      const int64_t jp = round_up(jmax, kLane) < ld ? round_up(jmax, kLane) : ld;
      tile_rows_times_t(qb, Dh, kt, ld, jp, sb);
      // Per row: softmax over its own prefix, 0 beyond it, computed over all jp lanes (a
      // multiple of kLane: no scalar remainders) with the tail set to 0 explicitly after exp.
      for (int64_t r = 0; r < kRows; ++r) {
        T* sr = sb + r * ld;
        const int64_t m = seen_r[r];
        if (m == 0) {
          for (int64_t j = 0; j < jp; ++j) sr[j] = T(0);
          continue;
        }
        const T l = softmax_tile(sr, m, jp);
        if (r < rows) lse[bh * L + i0 + r] = l;
      }
      // O = P V in kRows x kLane register tiles over the (padded) head dimension.
      tile_weights_times_rows(sb, ld, vr, w.dp, jmax, acc);
    }
    for (int64_t r = 0; r < rows; ++r) {
      T* o = out + (bh * L + i0 + r) * Dh;
      if (seen_r[r] == 0) {  // no admissible key: 0, and lse = +inf so the backward's p is 0
        for (int64_t d = 0; d < Dh; ++d) o[d] = T(0);
        lse[bh * L + i0 + r] = std::numeric_limits<T>::infinity();
      } else {
        for (int64_t d = 0; d < Dh; ++d) o[d] = acc[r * w.dp + d];
      }
    }
  }
}

// One (sequence, head) of the backward pass, query rows in blocks of kRows as in the forward:
//   S = Q K^T (scaled), P = exp(S - lse), dP = dO V^T, dS = P (dP - delta),
//   dV^T += dO^T P, dK^T += (scale Q)^T dS, dQ = scale dS K.
template <typename T> HEPGEN_INLINE void backward_head(const T* grad_out, const T* q, S4 qs, const T* k, S4 ks,
                                                       const T* v, S4 vs, const uint8_t* mask, const int64_t* ms,
                                                       const T* out, const T* lse, int64_t bh, int64_t H, int64_t L,
                                                       int64_t Dh, bool causal, T scale, T* grad_q, T* grad_k,
                                                       T* grad_v, Scratch<T>& w) {
  // q, k, v and the mask were gathered into w by gather_sequence.
  (void)q, (void)qs, (void)k, (void)ks, (void)v, (void)vs, (void)mask, (void)ms, (void)H;
  const int64_t ld = w.ld, dp = w.dp;
  const int64_t n = w.n_real;
  T* dkt = w.dkt.data();
  T* dvt = w.dvt.data();
  const T* kt = w.kt.data();
  const T* vt = w.vt.data();
  const T* qall = w.qall.data();
  T* gb = w.g.data();
  T* pb = w.s.data();
  T* db = w.ds.data();
  T* acc = w.acc.data();
  for (int64_t e = 0; e < Dh * ld; ++e) dkt[e] = dvt[e] = T(0);
  int64_t seen = causal ? 0 : n;
  for (int64_t i0 = 0; i0 < L; i0 += kRows) {
    const int64_t rows = L - i0 < kRows ? L - i0 : kRows;
    int64_t seen_r[kRows];
    T delta[kRows];
    for (int64_t r = 0; r < kRows; ++r) {
      if (causal && r < rows)
        while (seen < n && w.pos[seen] <= i0 + r) ++seen;
      seen_r[r] = r < rows ? seen : 0;
      const T* gi = grad_out + (bh * L + i0 + r) * Dh;
      const T* oi = out + (bh * L + i0 + r) * Dh;
      T dl = T(0);
      for (int64_t d = 0; d < Dh; ++d) {
        gb[r * Dh + d] = r < rows ? gi[d] : T(0);
        dl += r < rows ? gi[d] * oi[d] : T(0);
      }
      delta[r] = dl;
    }
    const T* qb = qall + i0 * Dh;  // kRows scaled query rows, zero beyond L
    const int64_t jmax = seen;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t d = 0; d < Dh; ++d) grad_q[(bh * L + i0 + r) * Dh + d] = T(0);
    if (jmax == 0) continue;  // no row of the block sees a key: no gradient
    const int64_t jp = round_up(jmax, kLane) < ld ? round_up(jmax, kLane) : ld;
    tile_rows_times_t(qb, Dh, kt, ld, jp, pb);  // S
    tile_rows_times_t(gb, Dh, vt, ld, jp, db);  // dP
    for (int64_t r = 0; r < kRows; ++r) {
      T* pr = pb + r * ld;
      T* dr = db + r * ld;
      const int64_t m = seen_r[r];
      if (m > 0) {
        const T l = lse[bh * L + i0 + r];
        for (int64_t j = 0; j < m; ++j) pr[j] -= l;
        exp_inplace(pr, m);
        for (int64_t j = 0; j < m; ++j) dr[j] = pr[j] * (dr[j] - delta[r]);
      }
      for (int64_t j = m; j < jp; ++j) pr[j] = dr[j] = T(0);  // inadmissible: no contribution
    }
    tile_add_outer(dvt, ld, gb, Dh, pb, jp);                     // dV^T += dO^T P
    tile_add_outer(dkt, ld, qb, Dh, db, jp);                     // dK^T += (scale Q)^T dS
    tile_weights_times_rows(db, ld, w.k.data(), dp, jmax, acc);  // dS K
    for (int64_t r = 0; r < rows; ++r)
      if (seen_r[r] > 0)
        for (int64_t d = 0; d < Dh; ++d) grad_q[(bh * L + i0 + r) * Dh + d] = acc[r * dp + d] * scale;
  }
  // Scatter back to positions; padded keys get 0.
  T* dk = grad_k + bh * L * Dh;
  T* dv = grad_v + bh * L * Dh;
  for (int64_t e = 0; e < L * Dh; ++e) dk[e] = dv[e] = T(0);
  for (int64_t j = 0; j < n; ++j) {
    T* dkj = dk + w.pos[j] * Dh;
    T* dvj = dv + w.pos[j] * Dh;
    for (int64_t d = 0; d < Dh; ++d) {
      dkj[d] = dkt[d * ld + j];
      dvj[d] = dvt[d * ld + j];
    }
  }
}

// The two compilations of each per-head kernel, and the choice between them.
#define HEPGEN_HEAD_VARIANTS(name, ret, params, args)                   \
  template <typename T> ret name##_generic params { return name args; } \
  HEPGEN_AVX2_VARIANT(name, ret, params, args)
#ifdef HEPGEN_AVX2_CLONE
#define HEPGEN_AVX2_VARIANT(name, ret, params, args) \
  template <typename T> HEPGEN_TARGET_AVX2 ret name##_avx2 params { return name args; }
bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#else
#define HEPGEN_AVX2_VARIANT(name, ret, params, args)
#endif

#define HEPGEN_FORWARD_PARAMS                                                                                   \
  (const T* q, S4 qs, const T* k, S4 ks, const T* v, S4 vs, const uint8_t* mask, const int64_t* ms, int64_t bh, \
   int64_t H, int64_t L, int64_t Dh, bool causal, T scale, T* out, T* lse, Scratch<T>& w)
#define HEPGEN_FORWARD_ARGS (q, qs, k, ks, v, vs, mask, ms, bh, H, L, Dh, causal, scale, out, lse, w)
HEPGEN_HEAD_VARIANTS(forward_head, void, HEPGEN_FORWARD_PARAMS, HEPGEN_FORWARD_ARGS)

#define HEPGEN_BACKWARD_PARAMS                                                                                         \
  (const T* grad_out, const T* q, S4 qs, const T* k, S4 ks, const T* v, S4 vs, const uint8_t* mask, const int64_t* ms, \
   const T* out, const T* lse, int64_t bh, int64_t H, int64_t L, int64_t Dh, bool causal, T scale, T* grad_q,          \
   T* grad_k, T* grad_v, Scratch<T>& w)
#define HEPGEN_BACKWARD_ARGS \
  (grad_out, q, qs, k, ks, v, vs, mask, ms, out, lse, bh, H, L, Dh, causal, scale, grad_q, grad_k, grad_v, w)
HEPGEN_HEAD_VARIANTS(backward_head, void, HEPGEN_BACKWARD_PARAMS, HEPGEN_BACKWARD_ARGS)

template <typename T> void forward_kernel(const T* q, S4 qs, const T* k, S4 ks, const T* v, S4 vs, const uint8_t* mask,
                                          const int64_t* ms, int64_t B, int64_t H, int64_t L, int64_t Dh, bool causal,
                                          T scale, T* out, T* lse) {
  auto head = forward_head_generic<T>;
#ifdef HEPGEN_AVX2_CLONE
  if (cpu_has_avx2()) head = forward_head_avx2<T>;
#endif
  HEPGEN_PARALLEL_REGION(B * H * L * L * Dh) {
    std::vector<Scratch<T>> ws(H, Scratch<T>(L, Dh, false));
    HEPGEN_FOR
    for (int64_t b = 0; b < B; ++b) {
      gather_sequence(q, qs, k, ks, v, vs, mask, ms, b, H, L, Dh, scale, false, ws.data());
      for (int64_t h = 0; h < H; ++h)
        head(q, qs, k, ks, v, vs, mask, ms, b * H + h, H, L, Dh, causal, scale, out, lse, ws[h]);
    }
  }
}

template <typename T> void backward_kernel(const T* grad_out, const T* q, S4 qs, const T* k, S4 ks, const T* v, S4 vs,
                                           const uint8_t* mask, const int64_t* ms, const T* out, const T* lse,
                                           int64_t B, int64_t H, int64_t L, int64_t Dh, bool causal, T scale, T* grad_q,
                                           T* grad_k, T* grad_v) {
  auto head = backward_head_generic<T>;
#ifdef HEPGEN_AVX2_CLONE
  if (cpu_has_avx2()) head = backward_head_avx2<T>;
#endif
  HEPGEN_PARALLEL_REGION(B * H * L * L * Dh) {
    std::vector<Scratch<T>> ws(H, Scratch<T>(L, Dh, true));
    HEPGEN_FOR
    for (int64_t b = 0; b < B; ++b) {
      gather_sequence(q, qs, k, ks, v, vs, mask, ms, b, H, L, Dh, scale, true, ws.data());
      for (int64_t h = 0; h < H; ++h)
        head(grad_out, q, qs, k, ks, v, vs, mask, ms, out, lse, b * H + h, H, L, Dh, causal, scale, grad_q, grad_k,
             grad_v, ws[h]);
    }
  }
}

// One (sequence, head) of the decode step: write the new key/value, attend over 0..len.
template <typename T> HEPGEN_INLINE void decode_head(const T* q, S4 qs, const T* k_new, S4 kns, const T* v_new, S4 vns,
                                                     T* k_cache, S4 kcs, T* v_cache, S4 vcs, const int64_t* lengths,
                                                     int64_t bh, int64_t H, int64_t Lmax, int64_t Dh, T scale, T* out,
                                                     T* s, T* acc, T* qrow) {
  const int64_t b = bh / H, h = bh % H;
  const int64_t len = lengths[b];
  T* o = out + bh * Dh;
  if (len < 0 || len >= Lmax) {  // full cache (unchecked by the caller): say so loudly
    for (int64_t d = 0; d < Dh; ++d) o[d] = std::numeric_limits<T>::quiet_NaN();
    return;
  }
  T* kc = k_cache + b * kcs.b + h * kcs.h;
  T* vc = v_cache + b * vcs.b + h * vcs.h;
  const T* kn = k_new + b * kns.b + h * kns.h;
  const T* vn = v_new + b * vns.b + h * vns.h;
  for (int64_t d = 0; d < Dh; ++d) {
    kc[len * kcs.l + d * kcs.d] = kn[d * kns.d];
    vc[len * vcs.l + d * vcs.d] = vn[d * vns.d];
    qrow[d] = q[b * qs.b + h * qs.h + d * qs.d] * scale;
  }
  const int64_t seen = len + 1;
  for (int64_t j = 0; j < seen; ++j) {
    const T* kj = kc + j * kcs.l;
    T dot = T(0);
    if (kcs.d == 1) {
      HEPGEN_SIMD_SUM(dot)
      for (int64_t d = 0; d < Dh; ++d) dot += qrow[d] * kj[d];
    } else {
      for (int64_t d = 0; d < Dh; ++d) dot += qrow[d] * kj[d * kcs.d];
    }
    s[j] = dot;
  }
  softmax_inplace<T, false>(s, seen);
  for (int64_t d = 0; d < Dh; ++d) acc[d] = T(0);
  for (int64_t j = 0; j < seen; ++j) {
    const T pj = s[j];
    const T* vj = vc + j * vcs.l;
    if (vcs.d == 1) {
      for (int64_t d = 0; d < Dh; ++d) acc[d] += pj * vj[d];
    } else {
      for (int64_t d = 0; d < Dh; ++d) acc[d] += pj * vj[d * vcs.d];
    }
  }
  for (int64_t d = 0; d < Dh; ++d) o[d] = acc[d];
}

#define HEPGEN_DECODE_PARAMS                                                                                  \
  (const T* q, S4 qs, const T* k_new, S4 kns, const T* v_new, S4 vns, T* k_cache, S4 kcs, T* v_cache, S4 vcs, \
   const int64_t* lengths, int64_t bh, int64_t H, int64_t Lmax, int64_t Dh, T scale, T* out, T* s, T* acc, T* qrow)
#define HEPGEN_DECODE_ARGS \
  (q, qs, k_new, kns, v_new, vns, k_cache, kcs, v_cache, vcs, lengths, bh, H, Lmax, Dh, scale, out, s, acc, qrow)
HEPGEN_HEAD_VARIANTS(decode_head, void, HEPGEN_DECODE_PARAMS, HEPGEN_DECODE_ARGS)

template <typename T> void decode_kernel(const T* q, S4 qs, const T* k_new, S4 kns, const T* v_new, S4 vns, T* k_cache,
                                         S4 kcs, T* v_cache, S4 vcs, const int64_t* lengths, int64_t B, int64_t H,
                                         int64_t Lmax, int64_t Dh, T scale, T* out) {
  auto head = decode_head_generic<T>;
#ifdef HEPGEN_AVX2_CLONE
  if (cpu_has_avx2()) head = decode_head_avx2<T>;
#endif
  HEPGEN_PARALLEL_REGION(B * H * Lmax * Dh) {
    std::vector<T> s(Lmax), acc(Dh), qrow(Dh);
    HEPGEN_FOR
    for (int64_t bh = 0; bh < B * H; ++bh)
      head(q, qs, k_new, kns, v_new, vns, k_cache, kcs, v_cache, vcs, lengths, bh, H, Lmax, Dh, scale, out, s.data(),
           acc.data(), qrow.data());
  }
}

S4 s4(const TensorView& t) { return {t.strides[0], t.strides[1], t.strides[2], t.strides[3]}; }

}  // namespace

Status masked_attention_forward(const TensorView& q, const TensorView& k, const TensorView& v,
                                const TensorView* key_padding_mask, bool causal, double scale, const TensorView& out,
                                const TensorView& lse) {
  HEPGEN_TRY(args::attention_scale(scale));
  HEPGEN_TRY(args::attention_forward(args::cpu(), q, k, v, key_padding_mask, out, lse));
  const int64_t B = q.shape[0], H = q.shape[1], L = q.shape[2], Dh = q.shape[3];
  if (B * H * L == 0) return Status::ok;
  const uint8_t* mask = key_padding_mask ? key_padding_mask->data_as<const uint8_t>() : nullptr;
  const int64_t ms[2] = {key_padding_mask ? key_padding_mask->strides[0] : 0,
                         key_padding_mask ? key_padding_mask->strides[1] : 0};
  if (q.dtype == DType::f32)
    forward_kernel(q.data_as<const float>(), s4(q), k.data_as<const float>(), s4(k), v.data_as<const float>(), s4(v),
                   mask, ms, B, H, L, Dh, causal, static_cast<float>(scale), out.data_as<float>(),
                   lse.data_as<float>());
  else
    forward_kernel(q.data_as<const double>(), s4(q), k.data_as<const double>(), s4(k), v.data_as<const double>(), s4(v),
                   mask, ms, B, H, L, Dh, causal, scale, out.data_as<double>(), lse.data_as<double>());
  return Status::ok;
}

Status masked_attention_backward(const TensorView& grad_out, const TensorView& q, const TensorView& k,
                                 const TensorView& v, const TensorView* key_padding_mask, const TensorView& out,
                                 const TensorView& lse, bool causal, double scale, const TensorView& grad_q,
                                 const TensorView& grad_k, const TensorView& grad_v) {
  HEPGEN_TRY(args::attention_scale(scale));
  HEPGEN_TRY(
      args::attention_backward(args::cpu(), grad_out, q, k, v, key_padding_mask, out, lse, grad_q, grad_k, grad_v));
  const int64_t B = q.shape[0], H = q.shape[1], L = q.shape[2], Dh = q.shape[3];
  if (B * H * L == 0) return Status::ok;
  const uint8_t* mask = key_padding_mask ? key_padding_mask->data_as<const uint8_t>() : nullptr;
  const int64_t ms[2] = {key_padding_mask ? key_padding_mask->strides[0] : 0,
                         key_padding_mask ? key_padding_mask->strides[1] : 0};
  if (q.dtype == DType::f32)
    backward_kernel(grad_out.data_as<const float>(), q.data_as<const float>(), s4(q), k.data_as<const float>(), s4(k),
                    v.data_as<const float>(), s4(v), mask, ms, out.data_as<const float>(), lse.data_as<const float>(),
                    B, H, L, Dh, causal, static_cast<float>(scale), grad_q.data_as<float>(), grad_k.data_as<float>(),
                    grad_v.data_as<float>());
  else
    backward_kernel(grad_out.data_as<const double>(), q.data_as<const double>(), s4(q), k.data_as<const double>(),
                    s4(k), v.data_as<const double>(), s4(v), mask, ms, out.data_as<const double>(),
                    lse.data_as<const double>(), B, H, L, Dh, causal, scale, grad_q.data_as<double>(),
                    grad_k.data_as<double>(), grad_v.data_as<double>());
  return Status::ok;
}

Status masked_attention_decode(const TensorView& q, const TensorView& k_new, const TensorView& v_new,
                               const TensorView& k_cache, const TensorView& v_cache, const TensorView& lengths,
                               double scale, const TensorView& out) {
  HEPGEN_TRY(args::attention_scale(scale));
  HEPGEN_TRY(args::attention_decode(args::cpu(), q, k_new, v_new, k_cache, v_cache, lengths, out));
  const int64_t B = q.shape[0], H = q.shape[1], Lmax = k_cache.shape[2], Dh = q.shape[3];
  if (B * H == 0) return Status::ok;
  if (q.dtype == DType::f32)
    decode_kernel(q.data_as<const float>(), s4(q), k_new.data_as<const float>(), s4(k_new),
                  v_new.data_as<const float>(), s4(v_new), k_cache.data_as<float>(), s4(k_cache),
                  v_cache.data_as<float>(), s4(v_cache), lengths.data_as<const int64_t>(), B, H, Lmax, Dh,
                  static_cast<float>(scale), out.data_as<float>());
  else
    decode_kernel(q.data_as<const double>(), s4(q), k_new.data_as<const double>(), s4(k_new),
                  v_new.data_as<const double>(), s4(v_new), k_cache.data_as<double>(), s4(k_cache),
                  v_cache.data_as<double>(), s4(v_cache), lengths.data_as<const int64_t>(), B, H, Lmax, Dh, scale,
                  out.data_as<double>());
  return Status::ok;
}

}  // namespace hepgen
