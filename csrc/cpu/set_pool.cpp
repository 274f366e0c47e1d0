// Masked set pooling on the CPU: one OpenMP task per set (see hepgen/set_pool.h).
#include "hepgen/set_pool.h"

#include <cstddef>
#include <vector>

#include "parallel.h"

namespace hepgen {
namespace {

template <typename T>
void forward_kernel(const T* x, const int64_t xs[3], const T* mask, const int64_t ms[2],
                    int64_t B, int64_t N, int64_t D, T sum_scale, T* out) {
  HEPGEN_PARALLEL_FOR(B * N * D)
  for (int64_t b = 0; b < B; ++b) {
    // Accumulate the masked total in the second half of the output row, then derive both.
    T* total = out + b * 2 * D + D;
    for (int64_t d = 0; d < D; ++d) total[d] = T(0);
    T count = T(0);
    for (int64_t n = 0; n < N; ++n) {
      const T m = mask[b * ms[0] + n * ms[1]];
      if (m == T(0)) continue;  // padding: never read
      count += m;
      const T* row = x + b * xs[0] + n * xs[1];
      if (xs[2] == 1) {
        for (int64_t d = 0; d < D; ++d) total[d] += m * row[d];
      } else {
        for (int64_t d = 0; d < D; ++d) total[d] += m * row[d * xs[2]];
      }
    }
    const T inv_count = count != T(0) ? T(1) / count : T(0);
    T* mean = out + b * 2 * D;
    for (int64_t d = 0; d < D; ++d) {
      mean[d] = total[d] * inv_count;
      total[d] *= sum_scale;
    }
  }
}

template <typename T>
void backward_kernel(const T* grad_out, const T* mask, const int64_t ms[2], int64_t B,
                     int64_t N, int64_t D, T sum_scale, T* grad_x) {
  HEPGEN_PARALLEL_REGION(B * N * D) {
    // Per set, grad_x[n] = mask[n] * coef with coef = g_mean / count + g_sum * scale.
    std::vector<T> coef(static_cast<std::size_t>(D));
    HEPGEN_FOR
    for (int64_t b = 0; b < B; ++b) {
      T count = T(0);
      for (int64_t n = 0; n < N; ++n) count += mask[b * ms[0] + n * ms[1]];
      const T inv_count = count != T(0) ? T(1) / count : T(0);
      const T* g_mean = grad_out + b * 2 * D;
      const T* g_sum = g_mean + D;
      for (int64_t d = 0; d < D; ++d) coef[d] = g_mean[d] * inv_count + g_sum[d] * sum_scale;
      for (int64_t n = 0; n < N; ++n) {
        const T m = mask[b * ms[0] + n * ms[1]];
        T* g = grad_x + (b * N + n) * D;
        for (int64_t d = 0; d < D; ++d) g[d] = m * coef[d];
      }
    }
  }
}

bool bad_sizes(int64_t B, int64_t N, int64_t D) { return B < 0 || N < 0 || D < 0; }

}  // namespace

Status set_pool_forward(DType dtype, const void* x, const int64_t x_strides[3],
                        const void* mask, const int64_t mask_strides[2], int64_t batch,
                        int64_t set_size, int64_t features, double sum_scale, void* out) {
  if (bad_sizes(batch, set_size, features)) return Status::invalid_argument;
  if (batch * set_size * features > 0 && (!x || !mask)) return Status::invalid_argument;
  if (batch * features > 0 && !out) return Status::invalid_argument;
  switch (dtype) {
    case DType::f32:
      forward_kernel(static_cast<const float*>(x), x_strides, static_cast<const float*>(mask),
                     mask_strides, batch, set_size, features, static_cast<float>(sum_scale),
                     static_cast<float*>(out));
      return Status::ok;
    case DType::f64:
      forward_kernel(static_cast<const double*>(x), x_strides, static_cast<const double*>(mask),
                     mask_strides, batch, set_size, features, sum_scale,
                     static_cast<double*>(out));
      return Status::ok;
    default:
      return Status::unsupported_dtype;
  }
}

Status set_pool_backward(DType dtype, const void* grad_out, const void* mask,
                         const int64_t mask_strides[2], int64_t batch, int64_t set_size,
                         int64_t features, double sum_scale, void* grad_x) {
  if (bad_sizes(batch, set_size, features)) return Status::invalid_argument;
  if (batch * set_size * features > 0 && (!grad_out || !mask || !grad_x))
    return Status::invalid_argument;
  switch (dtype) {
    case DType::f32:
      backward_kernel(static_cast<const float*>(grad_out), static_cast<const float*>(mask),
                      mask_strides, batch, set_size, features, static_cast<float>(sum_scale),
                      static_cast<float*>(grad_x));
      return Status::ok;
    case DType::f64:
      backward_kernel(static_cast<const double*>(grad_out), static_cast<const double*>(mask),
                      mask_strides, batch, set_size, features, sum_scale,
                      static_cast<double*>(grad_x));
      return Status::ok;
    default:
      return Status::unsupported_dtype;
  }
}

}  // namespace hepgen
