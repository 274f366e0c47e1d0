// Masked set pooling on CUDA (see hepgen/set_pool.h for the maths).
//
// One block per (set, tile of features); each thread owns one feature and walks the set,
// so reads of x are coalesced along the feature axis and the mask is a broadcast load.
// Padded rows (mask == 0) are skipped. Half types accumulate in float.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_check.cuh"
#include "cuda_types.cuh"
#include "hepgen/set_pool.h"

namespace hepgen {
namespace cuda {
namespace {

struct Strides3 { int64_t b, n, d; };
struct Strides2 { int64_t b, n; };

template <typename T>
__global__ void forward_kernel(const T* __restrict__ x, Strides3 xs, const T* __restrict__ mask,
                               Strides2 ms, int64_t N, int64_t D,
                               typename Acc<T>::type sum_scale, T* __restrict__ out) {
  using A = typename Acc<T>::type;
  const int64_t b = blockIdx.y;
  const int64_t d = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (d >= D) return;
  A total = 0, count = 0;
  for (int64_t n = 0; n < N; ++n) {
    const A m = load(mask + b * ms.b + n * ms.n);
    if (m == A(0)) continue;
    count += m;
    total += m * load(x + b * xs.b + n * xs.n + d * xs.d);
  }
  const A mean = count != A(0) ? total / count : A(0);
  out[b * 2 * D + d] = store<T>(mean);
  out[b * 2 * D + D + d] = store<T>(total * sum_scale);
}

template <typename T>
__global__ void backward_kernel(const T* __restrict__ grad_out, const T* __restrict__ mask,
                                Strides2 ms, int64_t N, int64_t D,
                                typename Acc<T>::type sum_scale, T* __restrict__ grad_x) {
  using A = typename Acc<T>::type;
  const int64_t b = blockIdx.y;
  const int64_t d = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (d >= D) return;
  A count = 0;
  for (int64_t n = 0; n < N; ++n) count += load(mask + b * ms.b + n * ms.n);
  const A inv_count = count != A(0) ? A(1) / count : A(0);
  const A coef = load(grad_out + b * 2 * D + d) * inv_count +
                 load(grad_out + b * 2 * D + D + d) * sum_scale;
  for (int64_t n = 0; n < N; ++n) {
    const A m = load(mask + b * ms.b + n * ms.n);
    grad_x[(b * N + n) * D + d] = store<T>(m * coef);
  }
}

constexpr int kMaxGridY = 65535;

dim3 block_for(int64_t D) {
  // Round the feature count up to whole warps, at most 256 threads.
  int64_t threads = ((D + 31) / 32) * 32;
  return dim3(static_cast<unsigned>(threads < 256 ? threads : 256));
}

template <typename T>
Status launch_forward(const void* x, const int64_t xs[3], const void* mask, const int64_t ms[2],
                      int64_t B, int64_t N, int64_t D, double sum_scale, void* out,
                      cudaStream_t stream) {
  const dim3 block = block_for(D);
  // The grid's y dimension is limited to 65535 sets per launch: launch in slices.
  for (int64_t b0 = 0; b0 < B; b0 += kMaxGridY) {
    const int64_t nb = B - b0 < kMaxGridY ? B - b0 : kMaxGridY;
    const dim3 grid(static_cast<unsigned>((D + block.x - 1) / block.x), static_cast<unsigned>(nb));
    forward_kernel<T><<<grid, block, 0, stream>>>(
        static_cast<const T*>(x) + b0 * xs[0], Strides3{xs[0], xs[1], xs[2]},
        static_cast<const T*>(mask) + b0 * ms[0], Strides2{ms[0], ms[1]}, N, D,
        static_cast<typename Acc<T>::type>(sum_scale), static_cast<T*>(out) + b0 * 2 * D);
    Status s = launch_status();
    if (s != Status::ok) return s;
  }
  return Status::ok;
}

template <typename T>
Status launch_backward(const void* grad_out, const void* mask, const int64_t ms[2], int64_t B,
                       int64_t N, int64_t D, double sum_scale, void* grad_x,
                       cudaStream_t stream) {
  const dim3 block = block_for(D);
  for (int64_t b0 = 0; b0 < B; b0 += kMaxGridY) {
    const int64_t nb = B - b0 < kMaxGridY ? B - b0 : kMaxGridY;
    const dim3 grid(static_cast<unsigned>((D + block.x - 1) / block.x), static_cast<unsigned>(nb));
    backward_kernel<T><<<grid, block, 0, stream>>>(
        static_cast<const T*>(grad_out) + b0 * 2 * D, static_cast<const T*>(mask) + b0 * ms[0],
        Strides2{ms[0], ms[1]}, N, D, static_cast<typename Acc<T>::type>(sum_scale),
        static_cast<T*>(grad_x) + b0 * N * D);
    Status s = launch_status();
    if (s != Status::ok) return s;
  }
  return Status::ok;
}

}  // namespace

Status set_pool_forward(DType dtype, const void* x, const int64_t x_strides[3], const void* mask,
                        const int64_t mask_strides[2], int64_t batch, int64_t set_size,
                        int64_t features, double sum_scale, void* out, void* stream) {
  if (batch < 0 || set_size < 0 || features < 0) return Status::invalid_argument;
  if (batch == 0 || features == 0) return Status::ok;
  auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case DType::f32: return launch_forward<float>(x, x_strides, mask, mask_strides, batch, set_size, features, sum_scale, out, s);
    case DType::f64: return launch_forward<double>(x, x_strides, mask, mask_strides, batch, set_size, features, sum_scale, out, s);
    case DType::f16: return launch_forward<__half>(x, x_strides, mask, mask_strides, batch, set_size, features, sum_scale, out, s);
    case DType::bf16: return launch_forward<__nv_bfloat16>(x, x_strides, mask, mask_strides, batch, set_size, features, sum_scale, out, s);
  }
  return Status::unsupported_dtype;
}

Status set_pool_backward(DType dtype, const void* grad_out, const void* mask,
                         const int64_t mask_strides[2], int64_t batch, int64_t set_size,
                         int64_t features, double sum_scale, void* grad_x, void* stream) {
  if (batch < 0 || set_size < 0 || features < 0) return Status::invalid_argument;
  if (batch == 0 || set_size == 0 || features == 0) return Status::ok;
  auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case DType::f32: return launch_backward<float>(grad_out, mask, mask_strides, batch, set_size, features, sum_scale, grad_x, s);
    case DType::f64: return launch_backward<double>(grad_out, mask, mask_strides, batch, set_size, features, sum_scale, grad_x, s);
    case DType::f16: return launch_backward<__half>(grad_out, mask, mask_strides, batch, set_size, features, sum_scale, grad_x, s);
    case DType::bf16: return launch_backward<__nv_bfloat16>(grad_out, mask, mask_strides, batch, set_size, features, sum_scale, grad_x, s);
  }
  return Status::unsupported_dtype;
}

}  // namespace cuda
}  // namespace hepgen
