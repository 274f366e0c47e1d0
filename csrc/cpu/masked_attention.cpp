// Masked attention on the CPU: one OpenMP task per (sequence, head); see
// hepgen/masked_attention.h for the maths.
//
// A head is small (L up to ~150 tokens, Dh <= 128), so a task first copies the head's real
// keys and values into contiguous scratch, in position order ("compaction": padded keys are
// skipped and never read). After that every inner loop is a unit-stride loop over keys or
// over the head dimension that the compiler vectorises, and causal masking costs nothing:
// the real keys query i may see are exactly a prefix of the compacted list.
#include "hepgen/masked_attention.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "parallel.h"

#ifdef HEPGEN_WITH_OPENMP
#define HEPGEN_SIMD_SUM(var) HEPGEN_PRAGMA(omp simd reduction(+ : var))
#else
#define HEPGEN_SIMD_SUM(var)
#endif

namespace hepgen {
namespace {

struct S4 {
  int64_t b, h, l, d;
};
S4 s4(const int64_t* s) { return {s[0], s[1], s[2], s[3]}; }

// exp of n values in place. For float a vectorisable 2^t (t = x log2 e) from a degree-7
// polynomial (about 1 ulp): glibc's scalar expf would keep the loop scalar and dominate the
// cost of short rows. Inputs here are scores minus their maximum, so t <= ~0; t is clamped
// at -126, where exp is ~1e-38 (a weight that cannot change a float sum).
inline void exp_inplace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float t = x[i] * 1.44269504088896341f;
    t = t < -126.f ? -126.f : t;
    const float r = (t + 12582912.f) - 12582912.f;  // round to nearest integer (1.5 * 2^23)
    const float f = (t - r) * 0.693147180559945309f;  // |f| <= ln2 / 2: e^f by Taylor
    float p = 1.f / 5040.f;
    p = p * f + 1.f / 720.f;
    p = p * f + 1.f / 120.f;
    p = p * f + 1.f / 24.f;
    p = p * f + 1.f / 6.f;
    p = p * f + 0.5f;
    p = p * f + 1.f;
    p = p * f + 1.f;
    const int32_t bits = (static_cast<int32_t>(r) + 127) << 23;  // 2^r
    float two_r;
    std::memcpy(&two_r, &bits, sizeof two_r);
    x[i] = p * two_r;
  }
}

inline void exp_inplace(double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
}

// Scratch of one task, reused across the (sequence, head) pairs a thread handles.
template <typename T>
struct Scratch {
  std::vector<int64_t> pos;  // positions of the real keys, increasing
  std::vector<T> kt, vt;     // [Dh][L]: real keys / values, transposed (key index fastest)
  std::vector<T> k, v;       // [L][Dh]: the same, row-major
  std::vector<T> s, ds;      // [L]: one row of scores / probabilities / their gradients
  std::vector<T> row, row2;  // [Dh]
  std::vector<T> dkt, dvt;   // [Dh][L]: key and value gradients, transposed
  Scratch(int64_t L, int64_t Dh, bool backward)
      : pos(L), kt(L * Dh), vt(backward ? L * Dh : 0), k(backward ? L * Dh : 0), v(L * Dh), s(L),
        ds(backward ? L : 0), row(Dh), row2(Dh), dkt(backward ? L * Dh : 0),
        dvt(backward ? L * Dh : 0) {}
};

// Copies the real keys and values of (b, h) into scratch; returns how many there are.
template <typename T>
int64_t gather_real_keys(const T* k, S4 ks, const T* v, S4 vs, const uint8_t* mask,
                         const int64_t* ms, int64_t b, int64_t h, int64_t L, int64_t Dh,
                         bool backward, Scratch<T>& w) {
  int64_t n = 0;
  for (int64_t j = 0; j < L; ++j) {
    if (mask && !mask[b * ms[0] + j * ms[1]]) continue;
    const T* kj = k + b * ks.b + h * ks.h + j * ks.l;
    const T* vj = v + b * vs.b + h * vs.h + j * vs.l;
    for (int64_t d = 0; d < Dh; ++d) {
      const T kd = kj[d * ks.d], vd = vj[d * vs.d];
      w.kt[d * L + n] = kd;
      w.v[n * Dh + d] = vd;
      if (backward) {
        w.k[n * Dh + d] = kd;
        w.vt[d * L + n] = vd;
      }
    }
    w.pos[n++] = j;
  }
  return n;
}

// s[j] = scale * sum_d q[d] kt[d][j] for j < n (q strided).
template <typename T>
void scores(const T* q, int64_t q_stride, T scale, const T* kt, int64_t L, int64_t Dh, int64_t n,
            T* s) {
  for (int64_t j = 0; j < n; ++j) s[j] = T(0);
  for (int64_t d = 0; d < Dh; ++d) {
    const T qd = q[d * q_stride] * scale;
    const T* ktd = kt + d * L;
    for (int64_t j = 0; j < n; ++j) s[j] += qd * ktd[j];
  }
}

template <typename T>
void forward_kernel(const T* q, S4 qs, const T* k, S4 ks, const T* v, S4 vs, const uint8_t* mask,
                    const int64_t* ms, int64_t B, int64_t H, int64_t L, int64_t Dh, bool causal,
                    T scale, T* out, T* lse) {
  HEPGEN_PARALLEL_REGION(B * H * L * L * Dh) {
    Scratch<T> w(L, Dh, false);
    HEPGEN_FOR
    for (int64_t bh = 0; bh < B * H; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const int64_t n = gather_real_keys(k, ks, v, vs, mask, ms, b, h, L, Dh, false, w);
      int64_t seen = n;  // real keys query i may see: a prefix of the compacted list
      if (causal) seen = 0;
      for (int64_t i = 0; i < L; ++i) {
        if (causal)
          while (seen < n && w.pos[seen] <= i) ++seen;
        T* o = out + (bh * L + i) * Dh;
        if (seen == 0) {  // no admissible key: 0, and lse = +inf so the backward's p is 0
          for (int64_t d = 0; d < Dh; ++d) o[d] = T(0);
          lse[bh * L + i] = std::numeric_limits<T>::infinity();
          continue;
        }
        T* s = w.s.data();
        scores(q + b * qs.b + h * qs.h + i * qs.l, qs.d, scale, w.kt.data(), L, Dh, seen, s);
        T m = s[0];
        for (int64_t j = 1; j < seen; ++j) m = s[j] > m ? s[j] : m;
        for (int64_t j = 0; j < seen; ++j) s[j] -= m;
        exp_inplace(s, seen);
        T sum = T(0);
        HEPGEN_SIMD_SUM(sum)
        for (int64_t j = 0; j < seen; ++j) sum += s[j];
        T* acc = w.row.data();
        for (int64_t d = 0; d < Dh; ++d) acc[d] = T(0);
        for (int64_t j = 0; j < seen; ++j) {
          const T pj = s[j];
          const T* vj = w.v.data() + j * Dh;
          for (int64_t d = 0; d < Dh; ++d) acc[d] += pj * vj[d];
        }
        const T inv = T(1) / sum;
        for (int64_t d = 0; d < Dh; ++d) o[d] = acc[d] * inv;
        lse[bh * L + i] = m + std::log(sum);
      }
    }
  }
}

template <typename T>
void backward_kernel(const T* grad_out, const T* q, S4 qs, const T* k, S4 ks, const T* v, S4 vs,
                     const uint8_t* mask, const int64_t* ms, const T* out, const T* lse, int64_t B,
                     int64_t H, int64_t L, int64_t Dh, bool causal, T scale, T* grad_q, T* grad_k,
                     T* grad_v) {
  HEPGEN_PARALLEL_REGION(B * H * L * L * Dh) {
    Scratch<T> w(L, Dh, true);
    HEPGEN_FOR
    for (int64_t bh = 0; bh < B * H; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const int64_t n = gather_real_keys(k, ks, v, vs, mask, ms, b, h, L, Dh, true, w);
      for (int64_t e = 0; e < Dh * L; ++e) w.dkt[e] = w.dvt[e] = T(0);
      int64_t seen = causal ? 0 : n;
      for (int64_t i = 0; i < L; ++i) {
        if (causal)
          while (seen < n && w.pos[seen] <= i) ++seen;
        T* dq = grad_q + (bh * L + i) * Dh;
        for (int64_t d = 0; d < Dh; ++d) dq[d] = T(0);
        if (seen == 0) continue;  // an empty row has no gradient
        const T* qi = q + b * qs.b + h * qs.h + i * qs.l;
        const T* dO = grad_out + (bh * L + i) * Dh;
        const T* oi = out + (bh * L + i) * Dh;
        T* p = w.s.data();
        T* ds = w.ds.data();
        // p_ij = exp(s_ij - lse_i), recomputed.
        scores(qi, qs.d, scale, w.kt.data(), L, Dh, seen, p);
        const T l = lse[bh * L + i];
        for (int64_t j = 0; j < seen; ++j) p[j] -= l;
        exp_inplace(p, seen);
        // dp_ij = dO_i . v_j; delta_i = dO_i . out_i; ds_ij = p_ij (dp_ij - delta_i).
        for (int64_t j = 0; j < seen; ++j) ds[j] = T(0);
        T delta = T(0);
        for (int64_t d = 0; d < Dh; ++d) {
          const T g = dO[d];
          delta += g * oi[d];
          const T* vtd = w.vt.data() + d * L;
          for (int64_t j = 0; j < seen; ++j) ds[j] += g * vtd[j];
        }
        for (int64_t j = 0; j < seen; ++j) ds[j] = p[j] * (ds[j] - delta);
        // dv_j += p_ij dO_i; dk_j += ds_ij q_i (scale applied once, at the end).
        for (int64_t d = 0; d < Dh; ++d) {
          const T g = dO[d], qd = qi[d * qs.d];
          T* dvtd = w.dvt.data() + d * L;
          T* dktd = w.dkt.data() + d * L;
          for (int64_t j = 0; j < seen; ++j) {
            dvtd[j] += g * p[j];
            dktd[j] += qd * ds[j];
          }
        }
        // dq_i = scale sum_j ds_ij k_j.
        for (int64_t j = 0; j < seen; ++j) {
          const T c = ds[j] * scale;
          const T* kj = w.k.data() + j * Dh;
          for (int64_t d = 0; d < Dh; ++d) dq[d] += c * kj[d];
        }
      }
      // Scatter back to positions; padded keys get 0.
      T* dk = grad_k + bh * L * Dh;
      T* dv = grad_v + bh * L * Dh;
      for (int64_t e = 0; e < L * Dh; ++e) dk[e] = dv[e] = T(0);
      for (int64_t j = 0; j < n; ++j) {
        T* dkj = dk + w.pos[j] * Dh;
        T* dvj = dv + w.pos[j] * Dh;
        for (int64_t d = 0; d < Dh; ++d) {
          dkj[d] = w.dkt[d * L + j] * scale;
          dvj[d] = w.dvt[d * L + j];
        }
      }
    }
  }
}

template <typename T>
void decode_kernel(const T* q, S4 qs, const T* k_new, S4 kns, const T* v_new, S4 vns, T* k_cache,
                   S4 kcs, T* v_cache, S4 vcs, const int64_t* lengths, int64_t B, int64_t H,
                   int64_t Lmax, int64_t Dh, T scale, T* out) {
  HEPGEN_PARALLEL_REGION(B * H * Lmax * Dh) {
    std::vector<T> s(Lmax), acc(Dh), qrow(Dh);
    HEPGEN_FOR
    for (int64_t bh = 0; bh < B * H; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const int64_t len = lengths[b];
      T* o = out + bh * Dh;
      if (len < 0 || len >= Lmax) {  // full cache (unchecked by the caller): say so loudly
        for (int64_t d = 0; d < Dh; ++d) o[d] = std::numeric_limits<T>::quiet_NaN();
        continue;
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
      T m = -std::numeric_limits<T>::infinity();
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
        m = dot > m ? dot : m;
      }
      for (int64_t j = 0; j < seen; ++j) s[j] -= m;
      exp_inplace(s.data(), seen);
      T sum = T(0);
      for (int64_t d = 0; d < Dh; ++d) acc[d] = T(0);
      for (int64_t j = 0; j < seen; ++j) {
        const T pj = s[j];
        sum += pj;
        const T* vj = vc + j * vcs.l;
        if (vcs.d == 1) {
          for (int64_t d = 0; d < Dh; ++d) acc[d] += pj * vj[d];
        } else {
          for (int64_t d = 0; d < Dh; ++d) acc[d] += pj * vj[d * vcs.d];
        }
      }
      const T inv = T(1) / sum;
      for (int64_t d = 0; d < Dh; ++d) o[d] = acc[d] * inv;
    }
  }
}

bool bad_sizes(int64_t B, int64_t H, int64_t L, int64_t Dh) {
  return B < 0 || H < 0 || L < 0 || Dh < 1;
}

}  // namespace

Status masked_attention_forward(DType dtype, const void* q, const int64_t q_strides[4],
                                const void* k, const int64_t k_strides[4], const void* v,
                                const int64_t v_strides[4], const uint8_t* mask,
                                const int64_t mask_strides[2], int64_t batch, int64_t heads,
                                int64_t length, int64_t head_dim, bool causal, double scale,
                                void* out, void* lse) {
  if (bad_sizes(batch, heads, length, head_dim)) return Status::invalid_argument;
  if (batch * heads * length == 0) return Status::ok;
  if (!q || !k || !v || !out || !lse || !q_strides || !k_strides || !v_strides ||
      (mask && !mask_strides))
    return Status::invalid_argument;
  switch (dtype) {
    case DType::f32:
      forward_kernel(static_cast<const float*>(q), s4(q_strides), static_cast<const float*>(k),
                     s4(k_strides), static_cast<const float*>(v), s4(v_strides), mask, mask_strides,
                     batch, heads, length, head_dim, causal, static_cast<float>(scale),
                     static_cast<float*>(out), static_cast<float*>(lse));
      return Status::ok;
    case DType::f64:
      forward_kernel(static_cast<const double*>(q), s4(q_strides), static_cast<const double*>(k),
                     s4(k_strides), static_cast<const double*>(v), s4(v_strides), mask,
                     mask_strides, batch, heads, length, head_dim, causal, scale,
                     static_cast<double*>(out), static_cast<double*>(lse));
      return Status::ok;
    default:
      return Status::unsupported_dtype;
  }
}

Status masked_attention_backward(DType dtype, const void* grad_out, const void* q,
                                 const int64_t q_strides[4], const void* k,
                                 const int64_t k_strides[4], const void* v,
                                 const int64_t v_strides[4], const uint8_t* mask,
                                 const int64_t mask_strides[2], const void* out, const void* lse,
                                 int64_t batch, int64_t heads, int64_t length, int64_t head_dim,
                                 bool causal, double scale, void* grad_q, void* grad_k,
                                 void* grad_v) {
  if (bad_sizes(batch, heads, length, head_dim)) return Status::invalid_argument;
  if (batch * heads * length == 0) return Status::ok;
  if (!grad_out || !q || !k || !v || !out || !lse || !grad_q || !grad_k || !grad_v ||
      !q_strides || !k_strides || !v_strides || (mask && !mask_strides))
    return Status::invalid_argument;
  switch (dtype) {
    case DType::f32:
      backward_kernel(static_cast<const float*>(grad_out), static_cast<const float*>(q),
                      s4(q_strides), static_cast<const float*>(k), s4(k_strides),
                      static_cast<const float*>(v), s4(v_strides), mask, mask_strides,
                      static_cast<const float*>(out), static_cast<const float*>(lse), batch, heads,
                      length, head_dim, causal, static_cast<float>(scale),
                      static_cast<float*>(grad_q), static_cast<float*>(grad_k),
                      static_cast<float*>(grad_v));
      return Status::ok;
    case DType::f64:
      backward_kernel(static_cast<const double*>(grad_out), static_cast<const double*>(q),
                      s4(q_strides), static_cast<const double*>(k), s4(k_strides),
                      static_cast<const double*>(v), s4(v_strides), mask, mask_strides,
                      static_cast<const double*>(out), static_cast<const double*>(lse), batch,
                      heads, length, head_dim, causal, scale, static_cast<double*>(grad_q),
                      static_cast<double*>(grad_k), static_cast<double*>(grad_v));
      return Status::ok;
    default:
      return Status::unsupported_dtype;
  }
}

Status masked_attention_decode(DType dtype, const void* q, const int64_t q_strides[4],
                               const void* k_new, const int64_t k_new_strides[4],
                               const void* v_new, const int64_t v_new_strides[4], void* k_cache,
                               const int64_t k_cache_strides[4], void* v_cache,
                               const int64_t v_cache_strides[4], const int64_t* lengths,
                               int64_t batch, int64_t heads, int64_t max_length, int64_t head_dim,
                               double scale, void* out) {
  if (bad_sizes(batch, heads, max_length, head_dim)) return Status::invalid_argument;
  if (batch * heads == 0) return Status::ok;
  if (!q || !k_new || !v_new || !k_cache || !v_cache || !lengths || !out || !q_strides ||
      !k_new_strides || !v_new_strides || !k_cache_strides || !v_cache_strides)
    return Status::invalid_argument;
  switch (dtype) {
    case DType::f32:
      decode_kernel(static_cast<const float*>(q), s4(q_strides), static_cast<const float*>(k_new),
                    s4(k_new_strides), static_cast<const float*>(v_new), s4(v_new_strides),
                    static_cast<float*>(k_cache), s4(k_cache_strides),
                    static_cast<float*>(v_cache), s4(v_cache_strides), lengths, batch, heads,
                    max_length, head_dim, static_cast<float>(scale), static_cast<float*>(out));
      return Status::ok;
    case DType::f64:
      decode_kernel(static_cast<const double*>(q), s4(q_strides),
                    static_cast<const double*>(k_new), s4(k_new_strides),
                    static_cast<const double*>(v_new), s4(v_new_strides),
                    static_cast<double*>(k_cache), s4(k_cache_strides),
                    static_cast<double*>(v_cache), s4(v_cache_strides), lengths, batch, heads,
                    max_length, head_dim, scale, static_cast<double*>(out));
      return Status::ok;
    default:
      return Status::unsupported_dtype;
  }
}

}  // namespace hepgen
