// Rational-quadratic spline on CUDA (see hepgen/rq_spline.h for the semantics and
// csrc/cpu/rq_spline_bin.h for the per-bin maths and the gradients, shared with the CPU).
//
// One thread per element, no per-thread arrays: a row's softmax is two passes (max, sum of
// exponentials) and a third pass cumulates the knots until the element's bin is found; the
// other row is cumulated up to that bin only. Only the two knot derivatives of the bin go
// through softplus. Half types are computed in float.
//
// Not yet tuned: each thread reads its own rows (stride 3K-1 or K between neighbouring
// threads), relying on L1 for the repeated passes; staging rows through shared memory for
// coalesced loads is the obvious next step once measured on a GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "../csrc/cpu/rq_spline_bin.h"
#include "cuda_check.cuh"
#include "cuda_types.cuh"
#include "hepgen/rq_spline.h"

namespace hepgen {
namespace cuda {
namespace {

template <typename A> struct Options {
  int64_t K;
  bool inverse;
  A bound, min_w, min_h, min_d, d_end;
};

template <typename A> struct RowBin {
  int64_t k;       // the bin
  A left, right;   // its knots
  A p_k, p_below;  // softmax probability of bin k, and of all bins below it
};

// Softmax statistics of a row: max and 1 / sum of exp(u - max).
template <typename T, typename A>
__device__ __forceinline__ void row_softmax(const T* u, int64_t K, A& mx, A& inv_sum) {
  mx = load(u);
  for (int64_t j = 1; j < K; ++j) mx = fmax(mx, load(u + j));
  A sum = 0;
  for (int64_t j = 0; j < K; ++j) sum += exp(load(u + j) - mx);
  inv_sum = A(1) / sum;
}

// Walks the knots -B + 2B cumsum(min + (1 - K min) p) of a row. With search, stops at the
// bin of `value` (the first interior knot above it; NaN knots stop the walk too, so the
// bin stays in range); otherwise at bin `k`.
template <typename T, typename A>
__device__ __forceinline__ RowBin<A> walk(const T* u, int64_t K, A min_size, A bound, bool search, A value, int64_t k) {
  A mx, inv_sum;
  row_softmax(u, K, mx, inv_sum);
  const A scale = A(1) - min_size * A(K);
  // The knots cumulate in double, as on the CPU: a knot's rounding error is amplified by
  // 1 / (bin width) in the bin position.
  double c = 0.0;
  A prev = -bound, below = 0;
  for (int64_t j = 0; j + 1 < K; ++j) {
    const A p = exp(load(u + j) - mx) * inv_sum;
    c += static_cast<double>(min_size + scale * p);
    const A knot = static_cast<A>(2.0 * static_cast<double>(bound) * c - static_cast<double>(bound));
    if (search ? !(value >= knot) : j == k) return {j, prev, knot, p, below};
    prev = knot;
    below += p;
  }
  return {K - 1, prev, bound, exp(load(u + K - 1) - mx) * inv_sum, below};
}

template <typename A> __device__ __forceinline__ A softplus(A v) { return fmax(v, A(0)) + log1p(exp(-fabs(v))); }

// Finds element i's bin in both rows and assembles the bin.
template <typename T, typename A> __device__ __forceinline__ rqs::Bin<A> locate(const Options<A>& o, const T* w,
                                                                                const T* h, const T* d, A v,
                                                                                RowBin<A>& xb, RowBin<A>& yb) {
  if (o.inverse) {
    yb = walk(h, o.K, o.min_h, o.bound, true, v, 0);
    xb = walk(w, o.K, o.min_w, o.bound, false, v, yb.k);
  } else {
    xb = walk(w, o.K, o.min_w, o.bound, true, v, 0);
    yb = walk(h, o.K, o.min_h, o.bound, false, v, xb.k);
  }
  const int64_t k = xb.k;
  rqs::Bin<A> b;
  b.x0 = xb.left;
  b.w = xb.right - xb.left;
  b.y0 = yb.left;
  b.h = yb.right - yb.left;
  b.d0 = k == 0 ? o.d_end : o.min_d + softplus(load(d + k - 1));
  b.d1 = k == o.K - 1 ? o.d_end : o.min_d + softplus(load(d + k));
  return b;
}

template <typename T> __global__ void forward_kernel(int64_t n, Options<typename Acc<T>::type> o,
                                                     const T* __restrict__ in, const T* __restrict__ w, int64_t ws,
                                                     const T* __restrict__ h, int64_t hs, const T* __restrict__ d,
                                                     int64_t ds, T* __restrict__ out, T* __restrict__ logdet) {
  using A = typename Acc<T>::type;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const A v = load(in + i);
  if (!(v >= -o.bound && v <= o.bound)) {  // outside, NaN, +-inf: identity tails
    out[i] = in[i];
    logdet[i] = store<T>(A(0));
    return;
  }
  RowBin<A> xb, yb;
  const rqs::Bin<A> b = locate(o, w + i * ws, h + i * hs, d + i * ds, v, xb, yb);
  const rqs::Eval<A> e = o.inverse ? rqs::inverse(b, v) : rqs::forward(b, v);
  out[i] = store<T>(e.out);
  logdet[i] = store<T>(e.logabsdet);
}

// g_u_j = c p_j ([j < k] g_left + [j == k] g_width - (g_left P_<k + g_width p_k))
template <typename T, typename A> __device__ __forceinline__ void softmax_backward(const T* u, int64_t K,
                                                                                   const RowBin<A>& rb, A c, A g_left,
                                                                                   A g_width, T* g_u) {
  A mx, inv_sum;
  row_softmax(u, K, mx, inv_sum);
  const A mean = g_left * rb.p_below + g_width * rb.p_k;
  for (int64_t j = 0; j < K; ++j) {
    const A p = exp(load(u + j) - mx) * inv_sum;
    const A g = (j < rb.k ? g_left : (j == rb.k ? g_width : A(0))) - mean;
    g_u[j] = store<T>(c * p * g);
  }
}

template <typename T> __global__ void backward_kernel(int64_t n, Options<typename Acc<T>::type> o,
                                                      const T* __restrict__ in, const T* __restrict__ w, int64_t ws,
                                                      const T* __restrict__ h, int64_t hs, const T* __restrict__ d,
                                                      int64_t ds, const T* __restrict__ g_out,
                                                      const T* __restrict__ g_ld, T* __restrict__ g_in,
                                                      T* __restrict__ g_w, T* __restrict__ g_h, T* __restrict__ g_d) {
  using A = typename Acc<T>::type;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t K = o.K;
  T* gw = g_w + i * K;
  T* gh = g_h + i * K;
  T* gd = g_d + i * (K - 1);
  for (int64_t j = 0; j + 1 < K; ++j) gd[j] = store<T>(A(0));
  const A v = load(in + i);
  if (!(v >= -o.bound && v <= o.bound)) {
    g_in[i] = g_out[i];
    for (int64_t j = 0; j < K; ++j) gw[j] = gh[j] = store<T>(A(0));
    return;
  }
  const T* wr = w + i * ws;
  const T* hr = h + i * hs;
  const T* dr = d + i * ds;
  RowBin<A> xb, yb;
  const rqs::Bin<A> b = locate(o, wr, hr, dr, v, xb, yb);
  const A t = o.inverse ? rqs::inverse(b, v).t : (v - b.x0) / b.w;
  const rqs::BinGrad<A> g = rqs::backward(b, t, o.inverse, load(g_out + i), load(g_ld + i));
  g_in[i] = store<T>(g.input);
  softmax_backward(wr, K, xb, A(2) * o.bound * (A(1) - o.min_w * A(K)), g.x0, g.w, gw);
  softmax_backward(hr, K, yb, A(2) * o.bound * (A(1) - o.min_h * A(K)), g.y0, g.h, gh);
  const int64_t k = xb.k;
  if (k > 0) gd[k - 1] = store<T>(g.d0 / (A(1) + exp(-load(dr + k - 1))));
  if (k < K - 1) gd[k] = store<T>(g.d1 / (A(1) + exp(-load(dr + k))));
}

constexpr int kThreads = 256;

template <typename A> Options<A> options_of(int64_t K, const RQSplineOptions& o) {
  return {K,
          o.inverse,
          A(o.tail_bound),
          A(o.min_bin_width),
          A(o.min_bin_height),
          A(o.min_derivative),
          A(rqs::boundary_derivative(o.min_derivative))};
}

template <typename T> Status launch_forward(int64_t n, int64_t K, const RQSplineOptions& o, const void* x,
                                            const void* w, int64_t ws, const void* h, int64_t hs, const void* d,
                                            int64_t ds, void* out, void* ld, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((n + kThreads - 1) / kThreads));
  forward_kernel<T><<<grid, kThreads, 0, stream>>>(
      n, options_of<typename Acc<T>::type>(K, o), static_cast<const T*>(x), static_cast<const T*>(w), ws,
      static_cast<const T*>(h), hs, static_cast<const T*>(d), ds, static_cast<T*>(out), static_cast<T*>(ld));
  return launch_status();
}

template <typename T> Status launch_backward(int64_t n, int64_t K, const RQSplineOptions& o, const void* x,
                                             const void* w, int64_t ws, const void* h, int64_t hs, const void* d,
                                             int64_t ds, const void* g_out, const void* g_ld, void* g_x, void* g_w,
                                             void* g_h, void* g_d, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((n + kThreads - 1) / kThreads));
  backward_kernel<T><<<grid, kThreads, 0, stream>>>(
      n, options_of<typename Acc<T>::type>(K, o), static_cast<const T*>(x), static_cast<const T*>(w), ws,
      static_cast<const T*>(h), hs, static_cast<const T*>(d), ds, static_cast<const T*>(g_out),
      static_cast<const T*>(g_ld), static_cast<T*>(g_x), static_cast<T*>(g_w), static_cast<T*>(g_h),
      static_cast<T*>(g_d));
  return launch_status();
}

}  // namespace

// A row that is alone has no row stride to speak of: K is as good as any.
static int64_t row_stride(const TensorView& t) { return t.shape[0] > 1 ? t.strides[0] : t.shape[1]; }

Status rq_spline_forward(const RQSplineOptions& o, const TensorView& inputs, const TensorView& widths,
                         const TensorView& heights, const TensorView& derivatives, const TensorView& outputs,
                         const TensorView& logabsdet, void* stream) {
  args::Backend be;
  HEPGEN_TRY(cuda_backend(&be));
  HEPGEN_TRY(args::rq_spline_forward(be, o, inputs, widths, heights, derivatives, outputs, logabsdet));
  const int64_t n = inputs.shape[0], K = widths.shape[1];
  if (n == 0) return Status::ok;
  const int64_t ws = row_stride(widths), hs = row_stride(heights), ds = row_stride(derivatives);
  auto s = static_cast<cudaStream_t>(stream);
#define HEPGEN_FWD(T)                                                                                            \
  launch_forward<T>(n, K, o, inputs.data, widths.data, ws, heights.data, hs, derivatives.data, ds, outputs.data, \
                    logabsdet.data, s)
  switch (inputs.dtype) {
    case DType::f32: return HEPGEN_FWD(float);
    case DType::f64: return HEPGEN_FWD(double);
    case DType::f16: return HEPGEN_FWD(__half);
    case DType::bf16: return HEPGEN_FWD(__nv_bfloat16);
    default: return Status::unsupported_dtype;
  }
#undef HEPGEN_FWD
}

Status rq_spline_backward(const RQSplineOptions& o, const TensorView& inputs, const TensorView& widths,
                          const TensorView& heights, const TensorView& derivatives, const TensorView& grad_outputs,
                          const TensorView& grad_logabsdet, const TensorView& grad_inputs,
                          const TensorView& grad_widths, const TensorView& grad_heights,
                          const TensorView& grad_derivatives, void* stream) {
  args::Backend be;
  HEPGEN_TRY(cuda_backend(&be));
  HEPGEN_TRY(args::rq_spline_backward(be, o, inputs, widths, heights, derivatives, grad_outputs, grad_logabsdet,
                                      grad_inputs, grad_widths, grad_heights, grad_derivatives));
  const int64_t n = inputs.shape[0], K = widths.shape[1];
  if (n == 0) return Status::ok;
  const int64_t ws = row_stride(widths), hs = row_stride(heights), ds = row_stride(derivatives);
  auto s = static_cast<cudaStream_t>(stream);
#define HEPGEN_BWD(T)                                                                                                  \
  launch_backward<T>(n, K, o, inputs.data, widths.data, ws, heights.data, hs, derivatives.data, ds, grad_outputs.data, \
                     grad_logabsdet.data, grad_inputs.data, grad_widths.data, grad_heights.data,                       \
                     grad_derivatives.data, s)
  switch (inputs.dtype) {
    case DType::f32: return HEPGEN_BWD(float);
    case DType::f64: return HEPGEN_BWD(double);
    case DType::f16: return HEPGEN_BWD(__half);
    case DType::bf16: return HEPGEN_BWD(__nv_bfloat16);
    default: return Status::unsupported_dtype;
  }
#undef HEPGEN_BWD
}

}  // namespace cuda
}  // namespace hepgen
