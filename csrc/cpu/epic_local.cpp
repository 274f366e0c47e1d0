// CPU passes of the fused EPiC local update (see hepgen/epic_local.h). Each pass is one
// sweep over the rows with OpenMP over sets, so what surrounds the two GEMMs (bias,
// activation, residual, mask, pooling, and their gradients) costs one read and one write.
#include "hepgen/epic_local.h"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "op_args.h"
#include "parallel.h"

namespace hepgen {
namespace {

// Branch-free forms: GCC does not if-convert `v > 0 ? v : v * slope` (under the default
// -ftrapping-math it will not speculate the multiply), which left these loops scalar.
template <typename T> inline T act(T v, T slope) { return std::max(v, T(0)) + slope * std::min(v, T(0)); }
// LeakyReLU keeps the sign, so act'(z) can be read from act(z): 1 where act(z) > 0.
template <typename T> inline T act_grad_from_output(T out, T slope) {
  return slope + (T(1) - slope) * static_cast<T>(out > T(0));
}

template <typename T> void bias_act(T* z, const T* bias, const int64_t* off, int64_t B, int64_t F, T slope) {
  const int64_t row0 = off[0];  // z holds rows off[0] .. off[B] (a chunk of whole sets)
  HEPGEN_PARALLEL_FOR((off[B] - off[0]) * F)
  for (int64_t b = 0; b < B; ++b) {
    const T* __restrict bb = bias + b * F;
    for (int64_t r = off[b]; r < off[b + 1]; ++r) {
      T* __restrict row = z + (r - row0) * F;
      for (int64_t f = 0; f < F; ++f) row[f] = act(row[f] + bb[f], slope);
    }
  }
}

template <typename T> void residual_pool(const T* z2, const T* x, const T* bias2, const T* mask, const int64_t ms[2],
                                         const int64_t* off, int64_t B, int64_t N, int64_t H, T slope, T scale, T* y,
                                         T* pooled) {
  const int64_t row0 = off[0];  // z2 and x hold rows off[0] .. off[B]
  HEPGEN_PARALLEL_REGION(B * N * H) {
    std::vector<T> acc(static_cast<std::size_t>(H));  // per-thread: keeps the loops alias-free
    HEPGEN_FOR
    for (int64_t b = 0; b < B; ++b) {
      const T* __restrict bb = bias2 + b * H;
      T* __restrict total = acc.data();
      for (int64_t f = 0; f < H; ++f) total[f] = T(0);
      T count = T(0);
      int64_t r = off[b] - row0;
      for (int64_t n = 0; n < N; ++n) {
        T* __restrict out = y + (b * N + n) * H;
        const T m = mask[b * ms[0] + n * ms[1]];
        if (m == T(0)) {
          for (int64_t f = 0; f < H; ++f) out[f] = T(0);
          continue;
        }
        const T* __restrict zr = z2 + r * H;
        const T* __restrict xr = x + r * H;
        ++r;
        count += m;
        if (m == T(1)) {  // the common case: a 0/1 mask
          for (int64_t f = 0; f < H; ++f) {
            const T v = act(zr[f] + bb[f] + xr[f], slope);
            out[f] = v;
            total[f] += v;
          }
        } else {
          for (int64_t f = 0; f < H; ++f) {
            const T v = m * act(zr[f] + bb[f] + xr[f], slope);
            out[f] = v;
            total[f] += m * v;
          }
        }
      }
      const T inv = count != T(0) ? T(1) / count : T(0);
      T* __restrict mean = pooled + b * 2 * H;
      // A set whose weights sum to 0 has mean 0, not total * 0 (NaN for an infinite total).
      for (int64_t f = 0; f < H; ++f) {
        mean[f] = count != T(0) ? total[f] * inv : T(0);
        mean[H + f] = total[f] * scale;
      }
    }
  }
}

template <typename T> void output_grad(const T* gy, const T* gp, const T* y, const T* mask, const int64_t ms[2],
                                       const int64_t* off, int64_t B, int64_t N, int64_t H, T slope, T scale, T* dz2,
                                       T* gb2) {
  HEPGEN_PARALLEL_REGION(B * N * H) {
    std::vector<T> coef(static_cast<std::size_t>(H));
    HEPGEN_FOR
    for (int64_t b = 0; b < B; ++b) {
      T count = T(0);
      for (int64_t n = 0; n < N; ++n) count += mask[b * ms[0] + n * ms[1]];
      const T inv = count != T(0) ? T(1) / count : T(0);
      // The pooled output reads y with weight m: its gradient reaches y as m * coef.
      for (int64_t f = 0; f < H; ++f) coef[f] = gp[b * 2 * H + f] * inv + gp[b * 2 * H + H + f] * scale;
      T* g2 = gb2 + b * H;
      for (int64_t f = 0; f < H; ++f) g2[f] = T(0);
      int64_t r = off[b];
      for (int64_t n = 0; n < N; ++n) {
        const T m = mask[b * ms[0] + n * ms[1]];
        if (m == T(0)) continue;
        const T* gyr = gy + (b * N + n) * H;
        const T* yr = y + (b * N + n) * H;
        T* d = dz2 + r * H;
        ++r;
        // y = m * act(z2) and act keeps z2's sign: z2 > 0 where y has m's sign (a negative
        // weight flips it; reading act' from y alone gave such rows the wrong derivative).
        const T sign = m > T(0) ? T(1) : T(-1);
        for (int64_t f = 0; f < H; ++f) {
          const T v = (gyr[f] + m * coef[f]) * m * act_grad_from_output(sign * yr[f], slope);
          d[f] = v;
          g2[f] += v;
        }
      }
    }
  }
}

template <typename T> void act_grad(T* dh, const T* h, const int64_t* off, int64_t B, int64_t F, T slope, T* gb1) {
  HEPGEN_PARALLEL_FOR((off[B] - off[0]) * F)
  for (int64_t b = 0; b < B; ++b) {
    T* g1 = gb1 + b * F;
    for (int64_t f = 0; f < F; ++f) g1[f] = T(0);
    for (int64_t r = off[b]; r < off[b + 1]; ++r) {
      T* d = dh + r * F;
      const T* hr = h + r * F;
      for (int64_t f = 0; f < F; ++f) {
        d[f] *= act_grad_from_output(hr[f], slope);
        g1[f] += d[f];
      }
    }
  }
}

template <typename T> void unpack(const T* packed, const T* mask, const int64_t ms[2], const int64_t* off, int64_t B,
                                  int64_t N, int64_t F, T* padded) {
  HEPGEN_PARALLEL_FOR(B * N * F)
  for (int64_t b = 0; b < B; ++b) {
    int64_t r = off[b];
    for (int64_t n = 0; n < N; ++n) {
      T* out = padded + (b * N + n) * F;
      if (mask[b * ms[0] + n * ms[1]] == T(0)) {
        for (int64_t f = 0; f < F; ++f) out[f] = T(0);
        continue;
      }
      const T* in = packed + (r++) * F;
      for (int64_t f = 0; f < F; ++f) out[f] = in[f];
    }
  }
}

}  // namespace

// Dispatch on f32/f64 (the checks admitted only these); every pass has the same two
// instantiations.
#define HEPGEN_DISPATCH_FLOAT(dtype, CALL) \
  if ((dtype) == DType::f32) {             \
    using T = float;                       \
    CALL;                                  \
  } else {                                 \
    using T = double;                      \
    CALL;                                  \
  }                                        \
  return Status::ok;

Status epic_bias_act(const TensorView& z, const TensorView& bias, const TensorView& offsets, double slope) {
  HEPGEN_TRY(args::epic_bias_act(z, bias, offsets));
  const int64_t B = bias.shape[0], F = z.shape[1];
  HEPGEN_DISPATCH_FLOAT(z.dtype, bias_act(z.data_as<T>(), bias.data_as<const T>(), offsets.data_as<const int64_t>(), B,
                                          F, static_cast<T>(slope)))
}

Status epic_residual_pool(const TensorView& z2, const TensorView& x, const TensorView& bias2, const TensorView& mask,
                          const TensorView& offsets, double slope, double sum_scale, const TensorView& y,
                          const TensorView& pooled) {
  HEPGEN_TRY(args::epic_residual_pool(z2, x, bias2, mask, offsets, y, pooled));
  const int64_t B = bias2.shape[0], N = mask.shape[1], H = z2.shape[1];
  const int64_t ms[2] = {mask.strides[0], mask.strides[1]};
  HEPGEN_DISPATCH_FLOAT(
      z2.dtype, residual_pool(z2.data_as<const T>(), x.data_as<const T>(), bias2.data_as<const T>(),
                              mask.data_as<const T>(), ms, offsets.data_as<const int64_t>(), B, N, H,
                              static_cast<T>(slope), static_cast<T>(sum_scale), y.data_as<T>(), pooled.data_as<T>()))
}

Status epic_output_grad(const TensorView& grad_y, const TensorView& grad_pooled, const TensorView& y,
                        const TensorView& mask, const TensorView& offsets, double slope, double sum_scale,
                        const TensorView& dz2, const TensorView& grad_bias2) {
  HEPGEN_TRY(args::epic_output_grad(grad_y, grad_pooled, y, mask, offsets, dz2, grad_bias2));
  const int64_t B = grad_y.shape[0], N = grad_y.shape[1], H = grad_y.shape[2];
  const int64_t ms[2] = {mask.strides[0], mask.strides[1]};
  HEPGEN_DISPATCH_FLOAT(grad_y.dtype, output_grad(grad_y.data_as<const T>(), grad_pooled.data_as<const T>(),
                                                  y.data_as<const T>(), mask.data_as<const T>(), ms,
                                                  offsets.data_as<const int64_t>(), B, N, H, static_cast<T>(slope),
                                                  static_cast<T>(sum_scale), dz2.data_as<T>(), grad_bias2.data_as<T>()))
}

Status epic_act_grad(const TensorView& dh, const TensorView& h, const TensorView& offsets, double slope,
                     const TensorView& grad_bias1) {
  HEPGEN_TRY(args::epic_act_grad(dh, h, offsets, grad_bias1));
  const int64_t B = grad_bias1.shape[0], F = dh.shape[1];
  HEPGEN_DISPATCH_FLOAT(dh.dtype, act_grad(dh.data_as<T>(), h.data_as<const T>(), offsets.data_as<const int64_t>(), B,
                                           F, static_cast<T>(slope), grad_bias1.data_as<T>()))
}

Status epic_unpack(const TensorView& packed, const TensorView& mask, const TensorView& offsets,
                   const TensorView& padded) {
  HEPGEN_TRY(args::epic_unpack(packed, mask, offsets, padded));
  const int64_t B = mask.shape[0], N = mask.shape[1], F = packed.shape[1];
  const int64_t ms[2] = {mask.strides[0], mask.strides[1]};
  HEPGEN_DISPATCH_FLOAT(packed.dtype, unpack(packed.data_as<const T>(), mask.data_as<const T>(), ms,
                                             offsets.data_as<const int64_t>(), B, N, F, padded.data_as<T>()))
}

#undef HEPGEN_DISPATCH_FLOAT

}  // namespace hepgen
