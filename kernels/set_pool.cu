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

struct Strides3 {
  int64_t b, n, d;
};
struct Strides2 {
  int64_t b, n;
};

template <typename T> __global__ void forward_kernel(const T* __restrict__ x, Strides3 xs, const T* __restrict__ mask,
                                                     Strides2 ms, int64_t N, int64_t D, typename Acc<T>::type sum_scale,
                                                     T* __restrict__ out) {
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

template <typename T> __global__ void backward_kernel(const T* __restrict__ grad_out, const T* __restrict__ mask,
                                                      Strides2 ms, int64_t N, int64_t D,
                                                      typename Acc<T>::type sum_scale, T* __restrict__ grad_x) {
  using A = typename Acc<T>::type;
  const int64_t b = blockIdx.y;
  const int64_t d = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (d >= D) return;
  A count = 0;
  for (int64_t n = 0; n < N; ++n) count += load(mask + b * ms.b + n * ms.n);
  const A inv_count = count != A(0) ? A(1) / count : A(0);
  const A coef = load(grad_out + b * 2 * D + d) * inv_count + load(grad_out + b * 2 * D + D + d) * sum_scale;
  for (int64_t n = 0; n < N; ++n) {
    const A m = load(mask + b * ms.b + n * ms.n);
    // A padded particle's gradient is 0, not 0 * coef (a NaN in grad_out must not reach it).
    grad_x[(b * N + n) * D + d] = store<T>(m != A(0) ? m * coef : A(0));
  }
}

constexpr int kMaxGridY = 65535;

dim3 block_for(int64_t D) {
  // Round the feature count up to whole warps, at most 256 threads.
  int64_t threads = ((D + 31) / 32) * 32;
  return dim3(static_cast<unsigned>(threads < 256 ? threads : 256));
}

template <typename T> Status launch_forward(const void* x, const int64_t xs[3], const void* mask, const int64_t ms[2],
                                            int64_t B, int64_t N, int64_t D, double sum_scale, void* out,
                                            cudaStream_t stream) {
  const dim3 block = block_for(D);
  // The grid's y dimension is limited to 65535 sets per launch: launch in slices.
  for (int64_t b0 = 0; b0 < B; b0 += kMaxGridY) {
    const int64_t nb = B - b0 < kMaxGridY ? B - b0 : kMaxGridY;
    const dim3 grid(static_cast<unsigned>((D + block.x - 1) / block.x), static_cast<unsigned>(nb));
    forward_kernel<T><<<grid, block, 0, stream>>>(
        static_cast<const T*>(x) + b0 * xs[0], Strides3{xs[0], xs[1], xs[2]}, static_cast<const T*>(mask) + b0 * ms[0],
        Strides2{ms[0], ms[1]}, N, D, static_cast<typename Acc<T>::type>(sum_scale), static_cast<T*>(out) + b0 * 2 * D);
    Status s = launch_status();
    if (s != Status::ok) return s;
  }
  return Status::ok;
}

template <typename T> Status launch_backward(const void* grad_out, const void* mask, const int64_t ms[2], int64_t B,
                                             int64_t N, int64_t D, double sum_scale, void* grad_x,
                                             cudaStream_t stream) {
  const dim3 block = block_for(D);
  for (int64_t b0 = 0; b0 < B; b0 += kMaxGridY) {
    const int64_t nb = B - b0 < kMaxGridY ? B - b0 : kMaxGridY;
    const dim3 grid(static_cast<unsigned>((D + block.x - 1) / block.x), static_cast<unsigned>(nb));
    backward_kernel<T><<<grid, block, 0, stream>>>(
        static_cast<const T*>(grad_out) + b0 * 2 * D, static_cast<const T*>(mask) + b0 * ms[0], Strides2{ms[0], ms[1]},
        N, D, static_cast<typename Acc<T>::type>(sum_scale), static_cast<T*>(grad_x) + b0 * N * D);
    Status s = launch_status();
    if (s != Status::ok) return s;
  }
  return Status::ok;
}

}  // namespace

Status set_pool_forward(const TensorView& x, const TensorView& mask, double sum_scale, const TensorView& out,
                        void* stream) {
  args::Backend be;
  HEPGEN_TRY(cuda_backend(&be));
  HEPGEN_TRY(args::set_pool_forward(be, x, mask, out));
  const int64_t B = x.shape[0], N = x.shape[1], D = x.shape[2];
  if (B == 0 || D == 0) return Status::ok;
  const int64_t xs[3] = {x.strides[0], x.strides[1], x.strides[2]};
  const int64_t ms[2] = {mask.strides[0], mask.strides[1]};
  auto s = static_cast<cudaStream_t>(stream);
  switch (x.dtype) {
    case DType::f32: return launch_forward<float>(x.data, xs, mask.data, ms, B, N, D, sum_scale, out.data, s);
    case DType::f64: return launch_forward<double>(x.data, xs, mask.data, ms, B, N, D, sum_scale, out.data, s);
    case DType::f16: return launch_forward<__half>(x.data, xs, mask.data, ms, B, N, D, sum_scale, out.data, s);
    case DType::bf16: return launch_forward<__nv_bfloat16>(x.data, xs, mask.data, ms, B, N, D, sum_scale, out.data, s);
    default: return Status::unsupported_dtype;
  }
}

Status set_pool_backward(const TensorView& grad_out, const TensorView& mask, double sum_scale, const TensorView& grad_x,
                         void* stream) {
  args::Backend be;
  HEPGEN_TRY(cuda_backend(&be));
  HEPGEN_TRY(args::set_pool_backward(be, grad_out, mask, grad_x));
  const int64_t B = mask.shape[0], N = mask.shape[1], D = grad_x.shape[2];
  if (B == 0 || N == 0 || D == 0) return Status::ok;
  const int64_t ms[2] = {mask.strides[0], mask.strides[1]};
  auto s = static_cast<cudaStream_t>(stream);
  const void* g = grad_out.data;
  switch (grad_out.dtype) {
    case DType::f32: return launch_backward<float>(g, mask.data, ms, B, N, D, sum_scale, grad_x.data, s);
    case DType::f64: return launch_backward<double>(g, mask.data, ms, B, N, D, sum_scale, grad_x.data, s);
    case DType::f16: return launch_backward<__half>(g, mask.data, ms, B, N, D, sum_scale, grad_x.data, s);
    case DType::bf16: return launch_backward<__nv_bfloat16>(g, mask.data, ms, B, N, D, sum_scale, grad_x.data, s);
    default: return Status::unsupported_dtype;
  }
}

}  // namespace cuda
}  // namespace hepgen
