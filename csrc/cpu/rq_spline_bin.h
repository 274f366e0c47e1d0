// The maths of one rational-quadratic bin, forward, inverse and their gradients, shared by
// the CPU kernels (csrc/cpu/rq_spline.cpp) and the CUDA kernels (kernels/rq_spline.cu) so the
// two cannot drift apart. Plain arithmetic on a compute type T (float or double).
//
// A bin k is described by its left knot (x0, y0), its width w and height h (w, h > 0), and
// the derivatives d0, d1 at its two knots. With the bin's mean slope s = h / w and
//
//   t  = (x - x0) / w                     position in the bin, in [0, 1]
//   q  = t (1 - t)
//   N  = s t^2 + d0 q
//   den = s + (d0 + d1 - 2 s) q
//   M  = d1 t^2 + 2 s q + d0 (1 - t)^2
//
// the spline and its log-derivative are
//
//   y = y0 + h N / den
//   L = log(dy/dx) = log(s^2 M / den^2).
//
// The inverse solves y = y0 + h N(t) / den(t) for t: a t^2 + b t + c = 0 with, for dy = y - y0,
//   a = h (s - d0) + dy (d0 + d1 - 2 s),  b = h d0 - dy (d0 + d1 - 2 s),  c = -s dy,
// whose root in [0, 1] is t = 2c / (-b - sqrt(b^2 - 4ac)) (the form that stays accurate when
// a -> 0); then x = x0 + t w and the inverse's log-derivative is -L(t).
//
// ---- Gradients (derived by hand; the tests check them against autograd in float64) -----
//
// Partial derivatives of y and L with respect to t, s, h (at fixed s), d0, d1, y0:
//
//   dy/dt  = h s M / den^2                       (= w dy/dx, the familiar RQ derivative)
//   dy/ds  = h (t^2 den - N (1 - 2q)) / den^2    (dN/ds = t^2, dden/ds = 1 - 2q)
//   dy/dh  = N / den
//   dy/dd0 = h q (den - N) / den^2               (dN/dd0 = dden/dd0 = q)
//   dy/dd1 = -h N q / den^2                      (dden/dd1 = q)
//   dy/dy0 = 1
//   dL/dt  = M_t / M - 2 den_t / den,  M_t = 2 (d1 t + s (1 - 2t) - d0 (1 - t)),
//                                      den_t = (d0 + d1 - 2s)(1 - 2t)
//   dL/ds  = 2 / s + 2 q / M - 2 (1 - 2q) / den
//   dL/dd0 = (1 - t)^2 / M - 2 q / den
//   dL/dd1 = t^2 / M - 2 q / den
//
// Forward (x -> y, L), incoming gradients gy, gl. With t = (x - x0)/w and s = h/w:
//   G_t = gy dy/dt + gl dL/dt,  G_s = gy dy/ds + gl dL/ds
//   g_x  = G_t / w
//   g_x0 = -G_t / w
//   g_w  = -(G_t t + G_s s) / w          (dt/dw = -t/w, ds/dw = -s/w)
//   g_y0 = gy
//   g_h  = gy dy/dh + G_s / w            (ds/dh = 1/w)
//   g_d0 = gy dy/dd0 + gl dL/dd0,  g_d1 = gy dy/dd1 + gl dL/dd1
//
// Inverse (y -> x = x0 + t w, -L(t)), incoming gradients gx, gl. t is defined implicitly by
// F(t, y, params) = y0 + h N/den - y = 0, so dt = (dy - dy0 - dy/dh dh - dy/ds ds - dy/dd0 dd0
// - dy/dd1 dd1) / (dy/dt). With the total gradient on t, G = gx w - gl dL/dt, and
// lambda = G / (dy/dt):
//   g_y  = lambda
//   g_s  = -gl dL/ds - lambda dy/ds
//   g_x0 = gx
//   g_w  = gx t - g_s s / w
//   g_y0 = -lambda
//   g_h  = -lambda dy/dh + g_s / w
//   g_d0 = -gl dL/dd0 - lambda dy/dd0,  g_d1 = -gl dL/dd1 - lambda dy/dd1
//
// From bins to parameters (done by the kernels): the width w = X_{k+1} - X_k of knots
// X_j = -B + 2B C_j with C_j = sum_{i<j} wn_i and wn = mw + (1 - K mw) p, p = softmax(u).
// X_k receives g_x0 - g_w and X_{k+1} receives g_w, so
//   g_wn_i = 2B ([i < k] g_x0 + [i == k] g_w)
// (the pinned end knots X_0 = -B and X_K = B have C_0 = 0 and C_K = 1 for every u, so treating
// them as knots adds nothing). Through the softmax, with c = 2B (1 - K mw), P = sum_{i<k} p_i:
//   g_u_i = c p_i ([i < k] g_x0 + [i == k] g_w - (g_x0 P + g_w p_k)).
// The same with (g_y0, g_h) for the heights. The interior derivatives D_j = md + softplus(v_{j-1})
// get g_v_{k-1} = g_d0 sigmoid(v_{k-1}) (if k > 0) and g_v_k = g_d1 sigmoid(v_k) (if k < K-1);
// the end derivatives are constants.
#pragma once

#include <cmath>

#ifdef __CUDACC__
#define HEPGEN_HD __host__ __device__ __forceinline__
#else
#define HEPGEN_HD inline
#endif

namespace hepgen {
namespace rqs {

template <typename T> struct Bin {
  T x0, w, y0, h, d0, d1;
};

template <typename T> struct Eval {
  T out, logabsdet, t;
};

// L = log(s^2 m / den^2). Where that quotient over- or underflows (derivatives beyond about
// 1e150 in double, 1e19 in float: den^2 is inf), it is taken by parts, as the reference does;
// the one-log form costs less and is as accurate everywhere else.
template <typename T> HEPGEN_HD T log_slope_by_parts(T s, T m, T den);
template <typename T> HEPGEN_HD T log_slope(T s, T m, T den) {
  const T arg = s * s * m / (den * den);
  const T tiny = sizeof(T) == sizeof(float) ? T(1.17549435e-38f) : T(2.2250738585072014e-308);
  if (arg >= tiny && arg - arg == T(0)) return std::log(arg);  // normal and finite
  return log_slope_by_parts(s, m, den);
}
template <typename T> HEPGEN_HD T log_slope_by_parts(T s, T m, T den) {
  return T(2) * (std::log(s) - std::log(den)) + std::log(m);
}

// The spline on x inside the bin.
template <typename T> HEPGEN_HD Eval<T> forward(const Bin<T>& b, T x) {
  const T s = b.h / b.w;
  const T t = (x - b.x0) / b.w;
  const T q = t * (T(1) - t);
  const T den = s + (b.d0 + b.d1 - T(2) * s) * q;
  const T num = b.h * (s * t * t + b.d0 * q);
  const T m = b.d1 * t * t + T(2) * s * q + b.d0 * (T(1) - t) * (T(1) - t);
  return {b.y0 + num / den, log_slope(s, m, den), t};
}

// The inverse spline on y inside the bin.
template <typename T> HEPGEN_HD Eval<T> inverse(const Bin<T>& b, T y) {
  const T s = b.h / b.w;
  const T dy = y - b.y0;
  const T curv = b.d0 + b.d1 - T(2) * s;
  const T a = b.h * (s - b.d0) + dy * curv;
  const T bb = b.h * b.d0 - dy * curv;
  const T c = -s * dy;
  T disc = bb * bb - T(4) * a * c;
  disc = disc > T(0) ? disc : T(0);  // >= 0 in exact arithmetic; rounding may dip below
  const T t = (T(2) * c) / (-bb - std::sqrt(disc));
  const T q = t * (T(1) - t);
  const T den = s + curv * q;
  const T m = b.d1 * t * t + T(2) * s * q + b.d0 * (T(1) - t) * (T(1) - t);
  return {b.x0 + t * b.w, -log_slope(s, m, den), t};
}

template <typename T> struct BinGrad {
  T input, x0, w, y0, h, d0, d1;
};

// Gradients of the bin's (output, logabsdet) given the incoming gradients g_out, g_ld, at the
// position t in the bin found by forward() or inverse(). See the derivation above.
template <typename T> HEPGEN_HD BinGrad<T> backward(const Bin<T>& b, T t, bool inverse, T g_out, T g_ld) {
  const T s = b.h / b.w;
  const T q = t * (T(1) - t);
  const T curv = b.d0 + b.d1 - T(2) * s;
  const T den = s + curv * q;
  const T n = s * t * t + b.d0 * q;  // N; y - y0 = h N / den
  const T m = b.d1 * t * t + T(2) * s * q + b.d0 * (T(1) - t) * (T(1) - t);
  const T inv_den = T(1) / den, inv_den2 = inv_den * inv_den, inv_m = T(1) / m;

  const T y_t = b.h * s * m * inv_den2;
  const T y_s = b.h * (t * t * den - n * (T(1) - T(2) * q)) * inv_den2;
  const T y_h = n * inv_den;
  const T y_d0 = b.h * q * (den - n) * inv_den2;
  const T y_d1 = -b.h * n * q * inv_den2;
  const T m_t = T(2) * (b.d1 * t + s * (T(1) - T(2) * t) - b.d0 * (T(1) - t));
  const T l_t = m_t * inv_m - T(2) * curv * (T(1) - T(2) * t) * inv_den;
  const T l_s = T(2) / s + T(2) * q * inv_m - T(2) * (T(1) - T(2) * q) * inv_den;
  const T l_d0 = (T(1) - t) * (T(1) - t) * inv_m - T(2) * q * inv_den;
  const T l_d1 = t * t * inv_m - T(2) * q * inv_den;

  BinGrad<T> g;
  if (!inverse) {
    const T g_t = g_out * y_t + g_ld * l_t;
    const T g_s = g_out * y_s + g_ld * l_s;
    g.input = g_t / b.w;
    g.x0 = -g.input;
    g.w = -(g_t * t + g_s * s) / b.w;
    g.y0 = g_out;
    g.h = g_out * y_h + g_s / b.w;
    g.d0 = g_out * y_d0 + g_ld * l_d0;
    g.d1 = g_out * y_d1 + g_ld * l_d1;
  } else {
    const T lambda = (g_out * b.w - g_ld * l_t) / y_t;
    const T g_s = -g_ld * l_s - lambda * y_s;
    g.input = lambda;
    g.x0 = g_out;
    g.w = g_out * t - g_s * s / b.w;
    g.y0 = -lambda;
    g.h = -lambda * y_h + g_s / b.w;
    g.d0 = -g_ld * l_d0 - lambda * y_d0;
    g.d1 = -g_ld * l_d1 - lambda * y_d1;
  }
  return g;
}

// The end-knot derivative: min_d + softplus(log(exp(1 - min_d) - 1)), which is 1 (nflows'
// constant, evaluated the way nflows does).
inline double boundary_derivative(double min_derivative) {
  const double logit = std::log(std::expm1(1.0 - min_derivative));
  return min_derivative + std::log1p(std::exp(logit));
}

}  // namespace rqs
}  // namespace hepgen
