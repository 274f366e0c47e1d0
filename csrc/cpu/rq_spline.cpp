// Rational-quadratic spline on the CPU (see hepgen/rq_spline.h for the semantics and
// rq_spline_bin.h for the per-bin maths and the derivation of the gradients).
//
// One pass per element, OpenMP over elements: softmax of the widths and heights, knot
// cumulation, bin search, two softplus (only the bin's own knots), evaluation, log-det.
// Nothing is allocated per element; each thread has a scratch row of 2K + 2 values.
// The softmax exponentials of float rows use an inlined polynomial exp so the loops over
// the bins vectorise; double rows use std::exp.
#include "hepgen/rq_spline.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

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

template <typename T>
inline T softplus(T v) {
  return (v > T(0) ? v : T(0)) + std::log1p(std::exp(-std::fabs(v)));
}

template <typename T>
inline T sigmoid(T v) {
  return T(1) / (T(1) + std::exp(-v));
}

// Softmax of one row u[K] into p[K] (probabilities) and the K-1 interior knots
// -B + 2B cumsum(min + (1 - K min) p) into knots[K-1].
template <typename T>
inline void softmax_knots(const T* u, int64_t K, T min_size, T bound, T* p, T* knots) {
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
template <typename T>
inline int64_t bin_index(const T* knots, int64_t K, T value) {
  int64_t k = 0;
  for (int64_t j = 0; j + 1 < K; ++j) k += value >= knots[j] ? 1 : 0;
  return k;
}

template <typename T>
struct Params {
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

template <typename T>
Params<T> params_of(const RQSplineOptions& o, const void* w, int64_t ws, const void* h, int64_t hs,
                    const void* d, int64_t ds) {
  return {o.bins, o.inverse, T(o.tail_bound), T(o.min_bin_width), T(o.min_bin_height),
          T(o.min_derivative), T(rqs::boundary_derivative(o.min_derivative)),
          static_cast<const T*>(w), ws, static_cast<const T*>(h), hs, static_cast<const T*>(d), ds};
}

// Per-thread scratch: softmax of widths and heights, and their interior knots.
template <typename T>
struct Scratch {
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
template <typename T>
inline rqs::Bin<T> locate(const Params<T>& P, int64_t i, T value, Scratch<T>& s, int64_t& k_out) {
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

template <typename T>
void forward_kernel(int64_t n, const Params<T>& P, const T* in, T* out, T* logdet) {
  HEPGEN_PARALLEL_REGION(n * P.K * 8) {
    Scratch<T> s(P.K);
    HEPGEN_FOR
    for (int64_t i = 0; i < n; ++i) {
      const T v = in[i];
      if (!(v >= -P.bound && v <= P.bound)) {  // outside, NaN, +-inf: identity tails
        out[i] = v;
        logdet[i] = T(0);
        continue;
      }
      int64_t k;
      const rqs::Bin<T> b = locate(P, i, v, s, k);
      const rqs::Eval<T> e = P.inverse ? rqs::inverse(b, v) : rqs::forward(b, v);
      out[i] = e.out;
      logdet[i] = e.logabsdet;
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

template <typename T>
void backward_kernel(int64_t n, const Params<T>& P, const T* in, const T* g_out, const T* g_ld,
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

bool options_ok(const RQSplineOptions& o) {
  const double K = static_cast<double>(o.bins);
  return o.bins >= 1 && std::isfinite(o.tail_bound) && o.tail_bound > 0 && o.min_bin_width >= 0 &&
         o.min_bin_width * K <= 1.0 && o.min_bin_height >= 0 && o.min_bin_height * K <= 1.0 &&
         o.min_derivative >= 0 && o.min_derivative < 1;
}

}  // namespace

Status rq_spline_forward(DType dtype, int64_t n, const RQSplineOptions& o, const void* inputs,
                         const void* widths, int64_t ws, const void* heights, int64_t hs,
                         const void* derivatives, int64_t ds, void* outputs, void* logabsdet) {
  if (n < 0 || !options_ok(o)) return Status::invalid_argument;
  if (n == 0) return Status::ok;
  if (!inputs || !widths || !heights || (o.bins > 1 && !derivatives) || !outputs || !logabsdet)
    return Status::invalid_argument;
  switch (dtype) {
    case DType::f32:
      forward_kernel(n, params_of<float>(o, widths, ws, heights, hs, derivatives, ds),
                     static_cast<const float*>(inputs), static_cast<float*>(outputs),
                     static_cast<float*>(logabsdet));
      return Status::ok;
    case DType::f64:
      forward_kernel(n, params_of<double>(o, widths, ws, heights, hs, derivatives, ds),
                     static_cast<const double*>(inputs), static_cast<double*>(outputs),
                     static_cast<double*>(logabsdet));
      return Status::ok;
    default:
      return Status::unsupported_dtype;
  }
}

Status rq_spline_backward(DType dtype, int64_t n, const RQSplineOptions& o, const void* inputs,
                          const void* widths, int64_t ws, const void* heights, int64_t hs,
                          const void* derivatives, int64_t ds, const void* grad_outputs,
                          const void* grad_logabsdet, void* grad_inputs, void* grad_widths,
                          void* grad_heights, void* grad_derivatives) {
  if (n < 0 || !options_ok(o)) return Status::invalid_argument;
  if (n == 0) return Status::ok;
  if (!inputs || !widths || !heights || !grad_outputs || !grad_logabsdet || !grad_inputs ||
      !grad_widths || !grad_heights || (o.bins > 1 && (!derivatives || !grad_derivatives)))
    return Status::invalid_argument;
  switch (dtype) {
    case DType::f32:
      backward_kernel(n, params_of<float>(o, widths, ws, heights, hs, derivatives, ds),
                      static_cast<const float*>(inputs), static_cast<const float*>(grad_outputs),
                      static_cast<const float*>(grad_logabsdet), static_cast<float*>(grad_inputs),
                      static_cast<float*>(grad_widths), static_cast<float*>(grad_heights),
                      static_cast<float*>(grad_derivatives));
      return Status::ok;
    case DType::f64:
      backward_kernel(n, params_of<double>(o, widths, ws, heights, hs, derivatives, ds),
                      static_cast<const double*>(inputs), static_cast<const double*>(grad_outputs),
                      static_cast<const double*>(grad_logabsdet), static_cast<double*>(grad_inputs),
                      static_cast<double*>(grad_widths), static_cast<double*>(grad_heights),
                      static_cast<double*>(grad_derivatives));
      return Status::ok;
    default:
      return Status::unsupported_dtype;
  }
}

}  // namespace hepgen
