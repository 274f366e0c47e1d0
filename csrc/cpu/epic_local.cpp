// CPU passes of the fused EPiC local update (see hepgen/epic_local.h). Each pass is one
// sweep over the rows with OpenMP over sets, so what surrounds the two GEMMs (bias,
// activation, residual, mask, pooling, and their gradients) costs one read and one write.
#include "hepgen/epic_local.h"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "parallel.h"

namespace hepgen {
namespace {

// Branch-free forms: GCC does not if-convert `v > 0 ? v : v * slope` (under the default
// -ftrapping-math it will not speculate the multiply), which left these loops scalar.
template <typename T> inline T act(T v, T slope) {
  return std::max(v, T(0)) + slope * std::min(v, T(0));
}
// LeakyReLU keeps the sign, so act'(z) can be read from act(z): 1 where act(z) > 0.
template <typename T> inline T act_grad_from_output(T out, T slope) {
  return slope + (T(1) - slope) * static_cast<T>(out > T(0));
}

template <typename T>
void bias_act(T* z, const T* bias, const int64_t* off, int64_t B, int64_t F, T slope) {
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

template <typename T>
void residual_pool(const T* z2, const T* x, const T* bias2, const T* mask, const int64_t ms[2],
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
      for (int64_t f = 0; f < H; ++f) {
        mean[f] = total[f] * inv;
        mean[H + f] = total[f] * scale;
      }
    }
  }
}

template <typename T>
void output_grad(const T* gy, const T* gp, const T* y, const T* mask, const int64_t ms[2],
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
        for (int64_t f = 0; f < H; ++f) {
          const T v = (gyr[f] + m * coef[f]) * m * act_grad_from_output(yr[f], slope);
          d[f] = v;
          g2[f] += v;
        }
      }
    }
  }
}

template <typename T>
void act_grad(T* dh, const T* h, const int64_t* off, int64_t B, int64_t F, T slope, T* gb1) {
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

template <typename T>
void unpack(const T* packed, const T* mask, const int64_t ms[2], const int64_t* off, int64_t B,
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

bool bad(int64_t B, int64_t N, int64_t F) { return B < 0 || N < 0 || F < 0; }

}  // namespace

// Dispatch on f32/f64; every pass has the same two instantiations.
#define HEPGEN_DISPATCH_FLOAT(dtype, CALL)                            \
  switch (dtype) {                                                    \
    case DType::f32: { using T = float; CALL; return Status::ok; }    \
    case DType::f64: { using T = double; CALL; return Status::ok; }   \
    default: return Status::unsupported_dtype;                        \
  }

Status epic_bias_act(DType dtype, void* z, const void* bias, const int64_t* offsets, int64_t batch,
                     int64_t features, double slope) {
  if (bad(batch, 0, features) || (batch > 0 && !offsets)) return Status::invalid_argument;
  HEPGEN_DISPATCH_FLOAT(dtype, bias_act(static_cast<T*>(z), static_cast<const T*>(bias), offsets,
                                        batch, features, static_cast<T>(slope)))
}

Status epic_residual_pool(DType dtype, const void* z2, const void* x, const void* bias2,
                          const void* mask, const int64_t mask_strides[2], const int64_t* offsets,
                          int64_t batch, int64_t set_size, int64_t features, double slope,
                          double sum_scale, void* y, void* pooled) {
  if (bad(batch, set_size, features) || (batch > 0 && !offsets)) return Status::invalid_argument;
  HEPGEN_DISPATCH_FLOAT(dtype, residual_pool(static_cast<const T*>(z2), static_cast<const T*>(x),
                                             static_cast<const T*>(bias2), static_cast<const T*>(mask),
                                             mask_strides, offsets, batch, set_size, features,
                                             static_cast<T>(slope), static_cast<T>(sum_scale),
                                             static_cast<T*>(y), static_cast<T*>(pooled)))
}

Status epic_output_grad(DType dtype, const void* grad_y, const void* grad_pooled, const void* y,
                        const void* mask, const int64_t mask_strides[2], const int64_t* offsets,
                        int64_t batch, int64_t set_size, int64_t features, double slope,
                        double sum_scale, void* dz2, void* grad_bias2) {
  if (bad(batch, set_size, features) || (batch > 0 && !offsets)) return Status::invalid_argument;
  HEPGEN_DISPATCH_FLOAT(dtype, output_grad(static_cast<const T*>(grad_y),
                                           static_cast<const T*>(grad_pooled),
                                           static_cast<const T*>(y), static_cast<const T*>(mask),
                                           mask_strides, offsets, batch, set_size, features,
                                           static_cast<T>(slope), static_cast<T>(sum_scale),
                                           static_cast<T*>(dz2), static_cast<T*>(grad_bias2)))
}

Status epic_act_grad(DType dtype, void* dh, const void* h, const int64_t* offsets, int64_t batch,
                     int64_t features, double slope, void* grad_bias1) {
  if (bad(batch, 0, features) || (batch > 0 && !offsets)) return Status::invalid_argument;
  HEPGEN_DISPATCH_FLOAT(dtype, act_grad(static_cast<T*>(dh), static_cast<const T*>(h), offsets,
                                        batch, features, static_cast<T>(slope),
                                        static_cast<T*>(grad_bias1)))
}

Status epic_unpack(DType dtype, const void* packed, const void* mask, const int64_t mask_strides[2],
                   const int64_t* offsets, int64_t batch, int64_t set_size, int64_t features,
                   void* padded) {
  if (bad(batch, set_size, features) || (batch > 0 && !offsets)) return Status::invalid_argument;
  HEPGEN_DISPATCH_FLOAT(dtype, unpack(static_cast<const T*>(packed), static_cast<const T*>(mask),
                                      mask_strides, offsets, batch, set_size, features,
                                      static_cast<T*>(padded)))
}

#undef HEPGEN_DISPATCH_FLOAT

}  // namespace hepgen
