// Masked set pooling on the CPU: one OpenMP task per set (see hepgen/set_pool.h).
#include "hepgen/set_pool.h"

#include <cstddef>
#include <vector>

#include "op_args.h"
#include "parallel.h"

namespace hepgen {
namespace {

template <typename T> void forward_kernel(const T* x, const int64_t xs[3], const T* mask, const int64_t ms[2],
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
      mean[d] = count != T(0) ? total[d] * inv_count : T(0);  // not total * 0: NaN for an inf total
      total[d] *= sum_scale;
    }
  }
}

template <typename T> void backward_kernel(const T* grad_out, const T* mask, const int64_t ms[2], int64_t B, int64_t N,
                                           int64_t D, T sum_scale, T* grad_x) {
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
        // A padded particle's gradient is 0, not 0 * coef: a NaN or inf in grad_out must not reach it.
        if (m == T(0)) {
          for (int64_t d = 0; d < D; ++d) g[d] = T(0);
        } else {
          for (int64_t d = 0; d < D; ++d) g[d] = m * coef[d];
        }
      }
    }
  }
}

}  // namespace

Status set_pool_forward(const TensorView& x, const TensorView& mask, double sum_scale, const TensorView& out) {
  HEPGEN_TRY(args::set_pool_forward(args::cpu(), x, mask, out));
  const int64_t B = x.shape[0], N = x.shape[1], D = x.shape[2];
  const int64_t xs[3] = {x.strides[0], x.strides[1], x.strides[2]};
  const int64_t ms[2] = {mask.strides[0], mask.strides[1]};
  if (B * D == 0) return Status::ok;
  if (x.dtype == DType::f32)
    forward_kernel(x.data_as<const float>(), xs, mask.data_as<const float>(), ms, B, N, D,
                   static_cast<float>(sum_scale), out.data_as<float>());
  else
    forward_kernel(x.data_as<const double>(), xs, mask.data_as<const double>(), ms, B, N, D, sum_scale,
                   out.data_as<double>());
  return Status::ok;
}

Status set_pool_backward(const TensorView& grad_out, const TensorView& mask, double sum_scale,
                         const TensorView& grad_x) {
  HEPGEN_TRY(args::set_pool_backward(args::cpu(), grad_out, mask, grad_x));
  const int64_t B = mask.shape[0], N = mask.shape[1], D = grad_x.shape[2];
  const int64_t ms[2] = {mask.strides[0], mask.strides[1]};
  if (B * N * D == 0) return Status::ok;
  if (grad_out.dtype == DType::f32)
    backward_kernel(grad_out.data_as<const float>(), mask.data_as<const float>(), ms, B, N, D,
                    static_cast<float>(sum_scale), grad_x.data_as<float>());
  else
    backward_kernel(grad_out.data_as<const double>(), mask.data_as<const double>(), ms, B, N, D, sum_scale,
                    grad_x.data_as<double>());
  return Status::ok;
}

}  // namespace hepgen
