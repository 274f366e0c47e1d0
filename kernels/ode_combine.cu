// Fused ODE stage/update combination on CUDA (see hepgen/ode_combine.h): a grid-stride
// loop over the state; the term pointers and coefficients travel by value in the launch.
//
// Tested on an NVIDIA H100 (2026-11-23, docs/gpu.md) against the reference by the op's tests
// (tests/ops/conformance); the TensorView entry point (2026-12) has not run on a GPU yet.
#include "cuda_check.cuh"
#include "cuda_types.cuh"
#include "hepgen/ode_combine.h"

namespace hepgen {
namespace cuda {
namespace {

template <typename T, typename A> struct Terms {
  const T* k[kOdeMaxTerms];
  A a[kOdeMaxTerms];
};

template <typename T> __global__ void combine_kernel(const T* __restrict__ y, typename Acc<T>::type y_coeff,
                                                     Terms<T, typename Acc<T>::type> terms, int K,
                                                     const T* __restrict__ h, const T* __restrict__ mask, int64_t R,
                                                     int64_t F, int64_t total, T* __restrict__ out) {
  using A = typename Acc<T>::type;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t sr = i / F;
    const A m = mask ? to_acc(mask[sr]) : A(1);
    if (m == A(0)) {
      out[i] = from_acc<T>(A(0));
      continue;
    }
    A acc = 0;
    for (int j = 0; j < K; ++j) acc += terms.a[j] * to_acc(terms.k[j][i]);
    out[i] = from_acc<T>(m * (y_coeff * to_acc(y[i]) + to_acc(h[sr / R]) * acc));
  }
}

template <typename T> Status launch(const void* y, double y_coeff, const void* const* k, const double* coeffs, int K,
                                    const void* h, const void* mask, int64_t S, int64_t R, int64_t F, void* out,
                                    cudaStream_t stream) {
  using A = typename Acc<T>::type;
  Terms<T, A> terms{};
  for (int j = 0; j < K; ++j) {
    terms.k[j] = static_cast<const T*>(k[j]);
    terms.a[j] = static_cast<A>(coeffs[j]);
  }
  const int64_t total = S * R * F;
  const int threads = 256;
  int64_t blocks = (total + threads - 1) / threads;
  if (blocks > 65535 * 8) blocks = 65535 * 8;  // grid-stride beyond this
  combine_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
      static_cast<const T*>(y), static_cast<A>(y_coeff), terms, K, static_cast<const T*>(h),
      static_cast<const T*>(mask), R, F, total, static_cast<T*>(out));
  return launch_status();
}

}  // namespace

Status ode_combine(const TensorView& y, double y_coeff, const TensorView* k, const double* coeffs, int n_terms,
                   const TensorView& h, const TensorView* mask, const TensorView& out, void* stream) {
  args::Backend be;
  HEPGEN_TRY(cuda_backend(&be));
  HEPGEN_TRY(args::ode_combine(be, y, k, coeffs, n_terms, h, mask, out));
  const int64_t S = y.shape[0], R = y.shape[1], F = y.shape[2];
  if (S * R * F == 0) return Status::ok;
  const void* kp[kOdeMaxTerms];
  for (int i = 0; i < n_terms; ++i) kp[i] = k[i].data;
  const void* m = mask ? mask->data : nullptr;
  auto s = static_cast<cudaStream_t>(stream);
  switch (y.dtype) {
    case DType::f32: return launch<float>(y.data, y_coeff, kp, coeffs, n_terms, h.data, m, S, R, F, out.data, s);
    case DType::f64: return launch<double>(y.data, y_coeff, kp, coeffs, n_terms, h.data, m, S, R, F, out.data, s);
    case DType::f16: return launch<__half>(y.data, y_coeff, kp, coeffs, n_terms, h.data, m, S, R, F, out.data, s);
    case DType::bf16:
      return launch<__nv_bfloat16>(y.data, y_coeff, kp, coeffs, n_terms, h.data, m, S, R, F, out.data, s);
    default: return Status::unsupported_dtype;
  }
}

}  // namespace cuda
}  // namespace hepgen
