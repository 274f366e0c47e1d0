// Rational-quadratic spline on the CPU (see hepgen/rq_spline.h for the semantics and
// rq_spline_bin.h for the per-bin maths and the derivation of the gradients).
//
// One pass per element, OpenMP over elements: softmax of the widths and heights, knot
// cumulation, bin search, two softplus (only the bin's own knots), evaluation, log-det.
// Nothing is allocated per element; each thread has a small scratch buffer.
//
// The forward/inverse kernel works on lanes of kLanes elements at a time, laid out
// [bin][lane], so every loop over lanes is branch-free and the compiler vectorises it; the
// float path uses inlined polynomial exp and log (a few ulp) for the same reason. The
// backward kernel goes one element at a time through rq_spline_bin.h.
#if defined(__GNUC__) && !defined(__clang__)
// sqrt without errno handling, so the lane loops that take a square root vectorise too.
#pragma GCC optimize("no-math-errno")
#endif
#include "hepgen/rq_spline.h"

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "op_args.h"
#include "parallel.h"
#include "rq_spline_bin.h"

namespace hepgen {
namespace {

// e^x for the softmax's x = u - max(u) <= 0, relative error ~1e-7 (Cody-Waite reduction and
// a degree-6 polynomial, Cephes' expf coefficients). -inf and x < -87 give ~0; NaN gives NaN.
inline float exp_nonpositive(float x) {
  float xc = x > -87.0f ? x : -87.0f;  // also maps NaN to -87; NaN is restored at the end
  xc = xc < 0.0f ? xc : 0.0f;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (xc * 1.44269504088896341f + magic) - magic;
  const float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x == x ? p * scale : x;  // NaN in, NaN out (a select: the loop still vectorises)
}

inline double exp_nonpositive(double x) { return std::exp(x); }

// log(x) for normal positive x, a few ulp (Cephes' logf polynomial), branch-free. Callers
// redo zero, subnormal, infinite or NaN arguments with std::log (see log_fixup).
inline float log_normal(float x) {
  int32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  float e = static_cast<float>(((bits >> 23) & 0xff) - 126);
  bits = (bits & 0x807fffff) | 0x3f000000;  // mantissa in [0.5, 1)
  float m;
  std::memcpy(&m, &bits, sizeof m);
  const bool small = m < 0.707106781186547524f;
  e = small ? e - 1.0f : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  y += -2.12194440e-4f * e;
  y += -0.5f * z;
  return m + y + 0.693359375f * e;
}

inline double log_normal(double x) { return std::log(x); }

inline bool log_fast_ok(float x) { return x >= FLT_MIN && x <= FLT_MAX; }
inline bool log_fast_ok(double) { return true; }

template <typename T> inline T softplus(T v) { return (v > T(0) ? v : T(0)) + std::log1p(std::exp(-std::fabs(v))); }

template <typename T> inline T sigmoid(T v) { return T(1) / (T(1) + std::exp(-v)); }

// Softmax of one row u[K] into p[K] (probabilities) and the K-1 interior knots
// -B + 2B cumsum(min + (1 - K min) p) into knots[K-1].
template <typename T> inline void softmax_knots(const T* u, int64_t K, T min_size, T bound, T* p, T* knots) {
  T mx = u[0];
  for (int64_t j = 1; j < K; ++j) mx = u[j] > mx ? u[j] : mx;
  for (int64_t j = 0; j < K; ++j) p[j] = exp_nonpositive(u[j] - mx);  // vectorised
  T sum = T(0);
  for (int64_t j = 0; j < K; ++j) sum += p[j];
  const T inv = T(1) / sum;
  for (int64_t j = 0; j < K; ++j) p[j] *= inv;
  // The knots cumulate in double: with float the knots near +B would carry K rounding
  // errors, and a knot's error is amplified by 1 / (bin width) in the bin position.
  const T scale = T(1) - min_size * T(K);
  double c = 0.0;
  for (int64_t j = 0; j + 1 < K; ++j) {
    c += static_cast<double>(min_size + scale * p[j]);
    knots[j] = static_cast<T>(2.0 * static_cast<double>(bound) * c - static_cast<double>(bound));
  }
}

// Bin k of a value among K bins: the number of interior knots <= value, in [0, K-1]
// whatever the comparisons (NaN knots count as not <=).
template <typename T> inline int64_t bin_index(const T* knots, int64_t K, T value) {
  int64_t k = 0;
  for (int64_t j = 0; j + 1 < K; ++j) k += value >= knots[j] ? 1 : 0;
  return k;
}

template <typename T> struct Params {
  int64_t K;
  bool inverse;
  T bound, min_w, min_h, min_d, d_end;
  const T* widths;
  int64_t ws;
  const T* heights;
  int64_t hs;
  const T* derivs;
  int64_t ds;
};

// Row strides of a row that is alone are never used: any value is as good as K.
inline int64_t row_stride(const TensorView& t) { return t.shape[0] > 1 ? t.strides[0] : t.shape[1]; }

template <typename T>
Params<T> params_of(const RQSplineOptions& o, const TensorView& w, const TensorView& h, const TensorView& d) {
  return {w.shape[1],
          o.inverse,
          T(o.tail_bound),
          T(o.min_bin_width),
          T(o.min_bin_height),
          T(o.min_derivative),
          T(rqs::boundary_derivative(o.min_derivative)),
          w.data_as<const T>(),
          row_stride(w),
          h.data_as<const T>(),
          row_stride(h),
          d.data_as<const T>(),
          row_stride(d)};
}

// Per-thread scratch: softmax of widths and heights, and their interior knots.
template <typename T> struct Scratch {
  std::vector<T> buf;
  T *pw, *ph, *xk, *yk;
  explicit Scratch(int64_t K) : buf(static_cast<size_t>(4 * K)) {
    pw = buf.data();
    ph = pw + K;
    xk = ph + K;
    yk = xk + K;
  }
};

// Finds the bin of element i (inside the bounds) and fills the scratch rows.
template <typename T> inline rqs::Bin<T> locate(const Params<T>& P, int64_t i, T value, Scratch<T>& s, int64_t& k_out) {
  const int64_t K = P.K;
  softmax_knots(P.widths + i * P.ws, K, P.min_w, P.bound, s.pw, s.xk);
  softmax_knots(P.heights + i * P.hs, K, P.min_h, P.bound, s.ph, s.yk);
  const int64_t k = bin_index(P.inverse ? s.yk : s.xk, K, value);
  k_out = k;
  rqs::Bin<T> b;
  const T x0 = k == 0 ? -P.bound : s.xk[k - 1];
  const T x1 = k == K - 1 ? P.bound : s.xk[k];
  const T y0 = k == 0 ? -P.bound : s.yk[k - 1];
  const T y1 = k == K - 1 ? P.bound : s.yk[k];
  b.x0 = x0;
  b.w = x1 - x0;
  b.y0 = y0;
  b.h = y1 - y0;
  const T* v = P.derivs + i * P.ds;
  b.d0 = k == 0 ? P.d_end : P.min_d + softplus(v[k - 1]);
  b.d1 = k == K - 1 ? P.d_end : P.min_d + softplus(v[k]);
  return b;
}

constexpr int kLanes = 8;

// Lane loops are marked `omp simd` so they vectorise even where the compiler would rather
// unroll them (OpenMP builds; a plain build still computes the same thing).
#ifdef HEPGEN_WITH_OPENMP
#define HEPGEN_LANES _Pragma("omp simd")
#else
#define HEPGEN_LANES
#endif

// ---- whole-lane transcendental functions -------------------------------------------------
// The float path uses GCC/Clang vector extensions of 4 floats (one SSE register, which every
// x86-64 has; wider generic vectors are lowered lane by lane without AVX), so a lane row of 8
// exponentials or logarithms costs about what one scalar libm call does. Same polynomials as
// the scalar versions above.
constexpr int kVec = 4;
typedef float VecF __attribute__((vector_size(kVec * sizeof(float))));
typedef int32_t VecI __attribute__((vector_size(kVec * sizeof(int32_t))));

inline VecF splat(float v) { return VecF{} + v; }

inline VecF load_lanes(const float* p) {
  VecF v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store_lanes(float* p, VecF v) { std::memcpy(p, &v, sizeof v); }

inline VecF exp_nonpositive(VecF x) {
  VecF xc = x > splat(-87.0f) ? x : splat(-87.0f);  // NaN -> -87, restored below
  xc = xc < splat(0.0f) ? xc : splat(0.0f);
  const VecF n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const VecF r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  VecF p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const VecI bits = (__builtin_convertvector(n, VecI) + 127) << 23;
  VecF scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x == x ? p * scale : x;
}

inline VecF log_normal(VecF x) {
  VecI bits;
  std::memcpy(&bits, &x, sizeof bits);
  VecF e = __builtin_convertvector(((bits >> 23) & 0xff) - 126, VecF);
  bits = (bits & 0x807fffff) | 0x3f000000;
  VecF m;
  std::memcpy(&m, &bits, sizeof m);
  const VecI small = m < splat(0.707106781186547524f);
  e = small ? e - 1.0f : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  const VecF z = m * m;
  VecF y = splat(7.0376836292e-2f);
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  y += -2.12194440e-4f * e;
  y += -0.5f * z;
  return m + y + 0.693359375f * e;
}

// In place over one lane row: exp (arguments <= 0), log (then std::log for arguments that
// are not normal floats), softplus.
inline void lanes_exp(float* a) {
  for (int h = 0; h < kLanes; h += kVec) store_lanes(a + h, exp_nonpositive(load_lanes(a + h)));
}
inline void lanes_exp(double* a) {
  for (int l = 0; l < kLanes; ++l) a[l] = std::exp(a[l]);
}

inline void lanes_softplus(float* a) {
  for (int h = 0; h < kLanes; h += kVec) {
    const VecF v = load_lanes(a + h);
    const VecF av = v < splat(0.0f) ? -v : v;
    const VecF e = exp_nonpositive(-av);
    const VecF u = e + 1.0f;
    const VecF pos = v > splat(0.0f) ? v : splat(0.0f);
    store_lanes(a + h, pos + log_normal(u) + (e - (u - 1.0f)) / u);
  }
}
inline void lanes_softplus(double* a) {
  for (int l = 0; l < kLanes; ++l) a[l] = softplus(a[l]);
}

// Lane scratch of one thread: parameter rows transposed to [bin][lane] and their knots.
template <typename T> struct LaneScratch {
  std::vector<T> buf;
  T *u, *xk, *yk;
  explicit LaneScratch(int64_t K) : buf(static_cast<size_t>(3 * K * kLanes)) {
    u = buf.data();
    xk = u + K * kLanes;
    yk = xk + K * kLanes;
  }
};

// Interior knots [K-1][lane] of the rows i0 .. i0+nl-1 of one parameter tensor.
template <typename T> inline void lane_knots(const T* rows, int64_t stride, int64_t i0, int nl, int64_t K, T min_size,
                                             T bound, T* u, T* knots) {
  // Transpose the rows to [bin][lane] (each row read contiguously); missing lanes get 0.
  for (int l = 0; l < nl; ++l) {
    const T* row = rows + (i0 + l) * stride;
    for (int64_t j = 0; j < K; ++j) u[j * kLanes + l] = row[j];
  }
  for (int l = nl; l < kLanes; ++l)
    for (int64_t j = 0; j < K; ++j) u[j * kLanes + l] = T(0);
  T mx[kLanes], inv[kLanes];
  HEPGEN_LANES
  for (int l = 0; l < kLanes; ++l) mx[l] = u[l];
  for (int64_t j = 1; j < K; ++j) HEPGEN_LANES
  for (int l = 0; l < kLanes; ++l) mx[l] = u[j * kLanes + l] > mx[l] ? u[j * kLanes + l] : mx[l];
  for (int64_t j = 0; j < K; ++j) {
    HEPGEN_LANES
    for (int l = 0; l < kLanes; ++l) u[j * kLanes + l] -= mx[l];
    lanes_exp(u + j * kLanes);
  }
  HEPGEN_LANES
  for (int l = 0; l < kLanes; ++l) inv[l] = T(0);
  for (int64_t j = 0; j < K; ++j) HEPGEN_LANES
  for (int l = 0; l < kLanes; ++l) inv[l] += u[j * kLanes + l];
  HEPGEN_LANES
  for (int l = 0; l < kLanes; ++l) inv[l] = T(1) / inv[l];
  // Cumulated in double: a knot's rounding error is amplified by 1 / (bin width) in the
  // position in the bin.
  const T scale = T(1) - min_size * T(K);
  const double b = static_cast<double>(bound);
  double c[kLanes] = {};
  for (int64_t j = 0; j + 1 < K; ++j) HEPGEN_LANES
  for (int l = 0; l < kLanes; ++l) {
    c[l] += static_cast<double>(min_size + scale * (u[j * kLanes + l] * inv[l]));
    knots[j * kLanes + l] = static_cast<T>(2.0 * b * c[l] - b);
  }
}

// The bin's two ends from interior knots [K-1][lane], for the bin index k of each lane.
template <typename T> inline void lane_bin_ends(const T* knots, int64_t K, const int32_t* k, T bound, T* lo, T* hi) {
  HEPGEN_LANES
  for (int l = 0; l < kLanes; ++l) {
    lo[l] = -bound;
    hi[l] = bound;
  }
  for (int64_t j = 0; j + 1 < K; ++j) HEPGEN_LANES
  for (int l = 0; l < kLanes; ++l) {
    const T knot = knots[j * kLanes + l];
    lo[l] = k[l] == j + 1 ? knot : lo[l];
    hi[l] = k[l] == j ? knot : hi[l];
  }
}

template <typename T>
void forward_lanes(const Params<T>& P, int64_t i0, int nl, const T* in, T* out, T* logdet, LaneScratch<T>& s) {
  const int64_t K = P.K;
  const T B = P.bound;
  T v[kLanes], z[kLanes];
  bool inside[kLanes];
  HEPGEN_LANES
  for (int l = 0; l < kLanes; ++l) {
    v[l] = l < nl ? in[i0 + l] : T(0);
    inside[l] = v[l] >= -B && v[l] <= B;  // false for NaN and +-inf
    z[l] = inside[l] ? v[l] : T(0);       // a safe point for the identity-tail lanes
  }
  lane_knots(P.widths, P.ws, i0, nl, K, P.min_w, B, s.u, s.xk);
  lane_knots(P.heights, P.hs, i0, nl, K, P.min_h, B, s.u, s.yk);
  // Bin: the number of interior knots <= the value, in [0, K-1] whatever the comparisons.
  const T* search = P.inverse ? s.yk : s.xk;
  int32_t k[kLanes] = {};
  for (int64_t j = 0; j + 1 < K; ++j) HEPGEN_LANES
  for (int l = 0; l < kLanes; ++l) k[l] += z[l] >= search[j * kLanes + l] ? 1 : 0;
  T x0[kLanes], x1[kLanes], y0[kLanes], y1[kLanes], d0[kLanes], d1[kLanes];
  lane_bin_ends(s.xk, K, k, B, x0, x1);
  lane_bin_ends(s.yk, K, k, B, y0, y1);
  // Only the bin's two knot derivatives are read (gathered per lane) and softplus'd.
  HEPGEN_LANES
  for (int l = 0; l < kLanes; ++l) {
    const T* dv = P.derivs + (i0 + l) * P.ds;
    const bool live = l < nl;
    d0[l] = live && k[l] > 0 ? dv[k[l] - 1] : T(0);
    d1[l] = live && k[l] < K - 1 ? dv[k[l]] : T(0);
  }
  lanes_softplus(d0);
  lanes_softplus(d1);
  HEPGEN_LANES
  for (int l = 0; l < kLanes; ++l) {
    d0[l] = k[l] == 0 ? P.d_end : P.min_d + d0[l];
    d1[l] = k[l] == K - 1 ? P.d_end : P.min_d + d1[l];
  }
  // Evaluation (the maths of rq_spline_bin.h, written over lanes so it vectorises).
  T res[kLanes], arg[kLanes];
  HEPGEN_LANES
  for (int l = 0; l < kLanes; ++l) {
    const T w = x1[l] - x0[l], h = y1[l] - y0[l], s_ = h / w;
    const T curv = d0[l] + d1[l] - T(2) * s_;
    T t;
    if (P.inverse) {
      const T dy = z[l] - y0[l];
      const T a = h * (s_ - d0[l]) + dy * curv;
      const T b = h * d0[l] - dy * curv;
      const T c = -s_ * dy;
      T disc = b * b - T(4) * a * c;
      disc = disc > T(0) ? disc : T(0);
      t = (T(2) * c) / (-b - std::sqrt(disc));
      res[l] = x0[l] + t * w;
    } else {
      t = (z[l] - x0[l]) / w;
    }
    const T q = t * (T(1) - t);
    const T den = s_ + curv * q;
    const T m = d1[l] * t * t + T(2) * s_ * q + d0[l] * (T(1) - t) * (T(1) - t);
    if (!P.inverse) res[l] = y0[l] + h * (s_ * t * t + d0[l] * q) / den;
    arg[l] = rqs::log_slope(s_, m, den);
  }
  const T* ld = arg;
  const T sign = P.inverse ? T(-1) : T(1);
  for (int l = 0; l < nl; ++l) {
    out[i0 + l] = inside[l] ? res[l] : v[l];
    logdet[i0 + l] = inside[l] ? sign * ld[l] : T(0);
  }
}

// The float path of forward_lanes, every step on vectors of kVec lanes (the generic template
// above is the double path and the readable version of the same steps).
inline VecF vselect(VecI mask, VecF a, VecF b) { return mask ? a : b; }

// A parameter tensor's rows i0 .. i0+nl-1, transposed in place into knots [K-1][lane]
// (the last bin row is left as scratch). The cumulative sum is compensated (TwoSum) so a
// knot is as accurate as a double-precision sum would make it.
inline void lane_knots_vec(const float* rows, int64_t stride, int64_t i0, int nl, int64_t K, float min_size,
                           float bound, float* a) {
  for (int l = 0; l < nl; ++l) {
    const float* row = rows + (i0 + l) * stride;
    for (int64_t j = 0; j < K; ++j) a[j * kLanes + l] = row[j];
  }
  for (int l = nl; l < kLanes; ++l)
    for (int64_t j = 0; j < K; ++j) a[j * kLanes + l] = 0.0f;
  const float scale = 1.0f - min_size * static_cast<float>(K);
  for (int h = 0; h < kLanes; h += kVec) {
    VecF mx = load_lanes(a + h);
    for (int64_t j = 1; j < K; ++j) {
      const VecF u = load_lanes(a + j * kLanes + h);
      mx = vselect(u > mx, u, mx);
    }
    VecF sum = splat(0.0f);
    for (int64_t j = 0; j < K; ++j) {
      const VecF e = exp_nonpositive(load_lanes(a + j * kLanes + h) - mx);
      store_lanes(a + j * kLanes + h, e);
      sum += e;
    }
    const VecF inv = 1.0f / sum;
    VecF hi = splat(0.0f), lo = splat(0.0f);
    for (int64_t j = 0; j + 1 < K; ++j) {
      const VecF term = min_size + scale * (load_lanes(a + j * kLanes + h) * inv);
      const VecF sum2 = hi + term;  // TwoSum: hi + term = sum2 + err exactly
      const VecF bp = sum2 - hi;
      lo += (hi - (sum2 - bp)) + (term - bp);
      hi = sum2;
      store_lanes(a + j * kLanes + h, (2.0f * bound * hi - bound) + 2.0f * bound * lo);
    }
  }
}

inline void forward_lanes(const Params<float>& P, int64_t i0, int nl, const float* in, float* out, float* logdet,
                          LaneScratch<float>& s) {
  const int64_t K = P.K;
  const float B = P.bound;
  lane_knots_vec(P.widths, P.ws, i0, nl, K, P.min_w, B, s.xk);
  lane_knots_vec(P.heights, P.hs, i0, nl, K, P.min_h, B, s.yk);
  float v[kLanes];
  for (int l = 0; l < kLanes; ++l) v[l] = l < nl ? in[i0 + l] : 0.0f;
  const float* search = P.inverse ? s.yk : s.xk;
  float res[kLanes], ld[kLanes];
  int32_t inside[kLanes];
  for (int h = 0; h < kLanes; h += kVec) {
    const VecF vv = load_lanes(v + h);
    const VecI in_bounds = (vv >= splat(-B)) & (vv <= splat(B));  // false for NaN and +-inf
    const VecF z = vselect(in_bounds, vv, splat(0.0f));
    VecI k = VecI{} + 0;
    for (int64_t j = 0; j + 1 < K; ++j) k -= z >= load_lanes(search + j * kLanes + h);  // true is -1
    VecF x0 = splat(-B), x1 = splat(B), y0 = splat(-B), y1 = splat(B);
    for (int64_t j = 0; j + 1 < K; ++j) {
      const VecI left = k == static_cast<int32_t>(j + 1), right = k == static_cast<int32_t>(j);
      const VecF xk = load_lanes(s.xk + j * kLanes + h), yk = load_lanes(s.yk + j * kLanes + h);
      x0 = vselect(left, xk, x0);
      x1 = vselect(right, xk, x1);
      y0 = vselect(left, yk, y0);
      y1 = vselect(right, yk, y1);
    }
    // The bin's two knot derivatives: gathered per lane, softplus'd as a vector.
    float g0[kVec], g1[kVec];
    for (int l = 0; l < kVec; ++l) {
      const bool live = h + l < nl;
      const float* dv = P.derivs + (i0 + h + l) * P.ds;
      g0[l] = live && k[l] > 0 ? dv[k[l] - 1] : 0.0f;
      g1[l] = live && k[l] < K - 1 ? dv[k[l]] : 0.0f;
    }
    VecF d0 = load_lanes(g0), d1 = load_lanes(g1);
    {
      const VecF sp[2] = {d0, d1};
      VecF out2[2];
      for (int i = 0; i < 2; ++i) {
        const VecF av = vselect(sp[i] < splat(0.0f), -sp[i], sp[i]);
        const VecF e = exp_nonpositive(-av);
        const VecF u = e + 1.0f;
        out2[i] = vselect(sp[i] > splat(0.0f), sp[i], splat(0.0f)) + log_normal(u) + (e - (u - 1.0f)) / u;
      }
      d0 = vselect(k == 0, splat(P.d_end), P.min_d + out2[0]);
      d1 = vselect(k == static_cast<int32_t>(K - 1), splat(P.d_end), P.min_d + out2[1]);
    }
    const VecF w = x1 - x0, hgt = y1 - y0, sl = hgt / w;
    const VecF curv = d0 + d1 - 2.0f * sl;
    VecF t, r;
    if (P.inverse) {
      const VecF dy = z - y0;
      const VecF a = hgt * (sl - d0) + dy * curv;
      const VecF b = hgt * d0 - dy * curv;
      const VecF c = -sl * dy;
      VecF disc = b * b - 4.0f * a * c;
      disc = vselect(disc > splat(0.0f), disc, splat(0.0f));
      VecF root = splat(0.0f);
      for (int l = 0; l < kVec; ++l) root[l] = std::sqrt(disc[l]);
      t = (2.0f * c) / (-b - root);
      r = x0 + t * w;
    } else {
      t = (z - x0) / w;
    }
    const VecF q = t * (1.0f - t);
    const VecF den = sl + curv * q;
    const VecF m = d1 * t * t + 2.0f * sl * q + d0 * (1.0f - t) * (1.0f - t);
    if (!P.inverse) r = y0 + hgt * (sl * t * t + d0 * q) / den;
    const VecF arg = sl * sl * m / (den * den);
    VecF l_ = log_normal(arg);
    for (int l = 0; l < kVec; ++l)  // rare: zero, subnormal, infinite or NaN arguments
      if (!log_fast_ok(arg[l])) l_[l] = rqs::log_slope_by_parts(sl[l], m[l], den[l]);
    store_lanes(res + h, r);
    store_lanes(ld + h, P.inverse ? -l_ : l_);
    std::memcpy(inside + h, &in_bounds, sizeof in_bounds);
  }
  for (int l = 0; l < nl; ++l) {
    out[i0 + l] = inside[l] ? res[l] : v[l];
    logdet[i0 + l] = inside[l] ? ld[l] : 0.0f;
  }
}

template <typename T> void forward_kernel(int64_t n, const Params<T>& P, const T* in, T* out, T* logdet) {
  const int64_t blocks = (n + kLanes - 1) / kLanes;
  HEPGEN_PARALLEL_REGION(n * P.K * 8) {
    LaneScratch<T> s(P.K);
    HEPGEN_FOR
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t i0 = blk * kLanes;
      const int nl = static_cast<int>(n - i0 < kLanes ? n - i0 : kLanes);
      forward_lanes(P, i0, nl, in, out, logdet, s);
    }
  }
}

// The knots' gradients (g_left on the bin's left knot and all knots to its left, g_width on
// its right knot) through the cumulation and the softmax into a row g_u[K]:
//   g_u_j = c p_j ([j < k] g_left + [j == k] g_width - (g_left P_<k + g_width p_k)).
template <typename T>
inline void softmax_knots_backward(const T* p, int64_t K, int64_t k, T c, T g_left, T g_width, T* g_u) {
  T below = T(0);
  for (int64_t j = 0; j < k; ++j) below += p[j];
  const T mean = g_left * below + g_width * p[k];
  for (int64_t j = 0; j < K; ++j) {
    const T g = (j < k ? g_left : (j == k ? g_width : T(0))) - mean;
    g_u[j] = c * p[j] * g;
  }
}

template <typename T> void backward_kernel(int64_t n, const Params<T>& P, const T* in, const T* g_out, const T* g_ld,
                                           T* g_in, T* g_w, T* g_h, T* g_d) {
  const int64_t K = P.K;
  HEPGEN_PARALLEL_REGION(n * K * 16) {
    Scratch<T> s(K);
    HEPGEN_FOR
    for (int64_t i = 0; i < n; ++i) {
      T* gw = g_w + i * K;
      T* gh = g_h + i * K;
      T* gd = g_d + i * (K - 1);
      for (int64_t j = 0; j + 1 < K; ++j) gd[j] = T(0);
      const T v = in[i];
      if (!(v >= -P.bound && v <= P.bound)) {  // identity tails: only the input gets a gradient
        g_in[i] = g_out[i];
        for (int64_t j = 0; j < K; ++j) gw[j] = gh[j] = T(0);
        continue;
      }
      int64_t k;
      const rqs::Bin<T> b = locate(P, i, v, s, k);
      const T t = P.inverse ? rqs::inverse(b, v).t : (v - b.x0) / b.w;
      const rqs::BinGrad<T> g = rqs::backward(b, t, P.inverse, g_out[i], g_ld[i]);
      g_in[i] = g.input;
      softmax_knots_backward(s.pw, K, k, T(2) * P.bound * (T(1) - P.min_w * T(K)), g.x0, g.w, gw);
      softmax_knots_backward(s.ph, K, k, T(2) * P.bound * (T(1) - P.min_h * T(K)), g.y0, g.h, gh);
      const T* dv = P.derivs + i * P.ds;
      if (k > 0) gd[k - 1] = g.d0 * sigmoid(dv[k - 1]);
      if (k < K - 1) gd[k] = g.d1 * sigmoid(dv[k]);
    }
  }
}

}  // namespace

Status rq_spline_forward(const RQSplineOptions& o, const TensorView& inputs, const TensorView& widths,
                         const TensorView& heights, const TensorView& derivatives, const TensorView& outputs,
                         const TensorView& logabsdet) {
  HEPGEN_TRY(args::rq_spline_forward(args::cpu(), o, inputs, widths, heights, derivatives, outputs, logabsdet));
  const int64_t n = inputs.shape[0];
  if (n == 0) return Status::ok;
  if (inputs.dtype == DType::f32)
    forward_kernel(n, params_of<float>(o, widths, heights, derivatives), inputs.data_as<const float>(),
                   outputs.data_as<float>(), logabsdet.data_as<float>());
  else
    forward_kernel(n, params_of<double>(o, widths, heights, derivatives), inputs.data_as<const double>(),
                   outputs.data_as<double>(), logabsdet.data_as<double>());
  return Status::ok;
}

Status rq_spline_backward(const RQSplineOptions& o, const TensorView& inputs, const TensorView& widths,
                          const TensorView& heights, const TensorView& derivatives, const TensorView& grad_outputs,
                          const TensorView& grad_logabsdet, const TensorView& grad_inputs,
                          const TensorView& grad_widths, const TensorView& grad_heights,
                          const TensorView& grad_derivatives) {
  HEPGEN_TRY(args::rq_spline_backward(args::cpu(), o, inputs, widths, heights, derivatives, grad_outputs,
                                      grad_logabsdet, grad_inputs, grad_widths, grad_heights, grad_derivatives));
  const int64_t n = inputs.shape[0];
  if (n == 0) return Status::ok;
  if (inputs.dtype == DType::f32)
    backward_kernel(n, params_of<float>(o, widths, heights, derivatives), inputs.data_as<const float>(),
                    grad_outputs.data_as<const float>(), grad_logabsdet.data_as<const float>(),
                    grad_inputs.data_as<float>(), grad_widths.data_as<float>(), grad_heights.data_as<float>(),
                    grad_derivatives.data_as<float>());
  else
    backward_kernel(n, params_of<double>(o, widths, heights, derivatives), inputs.data_as<const double>(),
                    grad_outputs.data_as<const double>(), grad_logabsdet.data_as<const double>(),
                    grad_inputs.data_as<double>(), grad_widths.data_as<double>(), grad_heights.data_as<double>(),
                    grad_derivatives.data_as<double>());
  return Status::ok;
}

}  // namespace hepgen
