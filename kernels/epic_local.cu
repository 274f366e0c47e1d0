// The fused EPiC local update on CUDA (see hepgen/epic_local.h): one block per set walks
// the set in tiles of kTile particles. A tile of x and of h lives in shared memory; thread
// j owns hidden unit j (first layer) and feature j (second layer), reading the transposed
// weights so that a warp's loads are consecutive. Pooling accumulates in registers of the
// thread that owns the feature: no atomics, deterministic. Padded particles are skipped.
//
// Tested on an NVIDIA H100 (2026-11-23, docs/gpu.md) against the float64 reference by the op's
// tests (tests/ops/conformance); the TensorView entry point (2026-12) has not run on a GPU yet.
#include "cuda_check.cuh"
#include "cuda_types.cuh"
#include "hepgen/epic_local.h"

namespace hepgen {
namespace cuda {
namespace {

constexpr int kTile = 8;
constexpr int64_t kMaxGrid = 2147483647;

struct S3 {
  int64_t b, n, d;
};
struct S2 {
  int64_t b, n;
};

template <typename A> __device__ __forceinline__ A act(A v, A slope) { return v > A(0) ? v : v * slope; }
template <typename A> __device__ __forceinline__ A act_grad_out(A out, A slope) { return out > A(0) ? A(1) : slope; }

template <typename T>
__global__ void forward_kernel(const T* __restrict__ x, S3 xs, const T* __restrict__ mask, S2 ms,
                               const T* __restrict__ w1t, const T* __restrict__ bias1, const T* __restrict__ w2t,
                               const T* __restrict__ bias2, int64_t N, int H, int H1, typename Acc<T>::type slope,
                               typename Acc<T>::type scale, T* __restrict__ y, T* __restrict__ pooled) {
  using A = typename Acc<T>::type;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  A* xs_t = reinterpret_cast<A*>(smem_raw);  // [kTile][H]
  A* hs_t = xs_t + kTile * H;                // [kTile][H1]
  __shared__ A m_t[kTile];
  const int64_t b = blockIdx.x;
  const int t = threadIdx.x;
  const A b2 = t < H ? to_acc(bias2[b * H + t]) : A(0);
  const A b1 = t < H1 ? to_acc(bias1[b * H1 + t]) : A(0);
  A total = 0, count = 0;
  for (int64_t n0 = 0; n0 < N; n0 += kTile) {
    if (t < kTile) m_t[t] = n0 + t < N ? to_acc(mask[b * ms.b + (n0 + t) * ms.n]) : A(0);
    __syncthreads();
    for (int p = 0; p < kTile; ++p) {
      if (m_t[p] == A(0)) continue;
      for (int f = t; f < H; f += blockDim.x) xs_t[p * H + f] = to_acc(x[b * xs.b + (n0 + p) * xs.n + f * xs.d]);
    }
    __syncthreads();
    if (t < H1) {
      A acc[kTile];
      for (int p = 0; p < kTile; ++p) acc[p] = b1;
      for (int k = 0; k < H; ++k) {
        const A w = to_acc(w1t[k * H1 + t]);
        for (int p = 0; p < kTile; ++p) acc[p] += xs_t[p * H + k] * w;  // padded rows: unused
      }
      for (int p = 0; p < kTile; ++p) hs_t[p * H1 + t] = act(acc[p], slope);
    }
    __syncthreads();
    if (t < H) {
      A acc[kTile];
      for (int p = 0; p < kTile; ++p) acc[p] = b2;
      for (int j = 0; j < H1; ++j) {
        const A w = to_acc(w2t[j * H + t]);
        for (int p = 0; p < kTile; ++p) acc[p] += hs_t[p * H1 + j] * w;
      }
      for (int p = 0; p < kTile && n0 + p < N; ++p) {
        const A m = m_t[p];
        A v = A(0);
        if (m != A(0)) {
          v = m * act(acc[p] + xs_t[p * H + t], slope);
          total += m * v;
        }
        y[(b * N + n0 + p) * H + t] = from_acc<T>(v);
      }
    }
    for (int p = 0; p < kTile; ++p) count += m_t[p];
    __syncthreads();  // the next tile overwrites the shared tiles
  }
  if (t < H) {
    pooled[b * 2 * H + t] = from_acc<T>(count != A(0) ? total / count : A(0));
    pooled[b * 2 * H + H + t] = from_acc<T>(total * scale);
  }
}

template <typename T>
__global__ void backward_kernel(const T* __restrict__ gy, const T* __restrict__ gp, const T* __restrict__ x, S3 xs,
                                const T* __restrict__ y, const T* __restrict__ mask, S2 ms, const T* __restrict__ w1,
                                const T* __restrict__ w1t, const T* __restrict__ bias1, const T* __restrict__ w2,
                                int64_t N, int H, int H1, typename Acc<T>::type slope, typename Acc<T>::type scale,
                                T* __restrict__ dx, T* __restrict__ dz1, T* __restrict__ h_out, T* __restrict__ dz2,
                                T* __restrict__ gb1, T* __restrict__ gb2) {
  using A = typename Acc<T>::type;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  A* xs_t = reinterpret_cast<A*>(smem_raw);  // [kTile][H]
  A* hs_t = xs_t + kTile * H;                // [kTile][H1]: h, then dz1
  A* d2_t = hs_t + kTile * H1;               // [kTile][H]: dz2
  __shared__ A m_t[kTile];
  const int64_t b = blockIdx.x;
  const int t = threadIdx.x;
  A count = 0;
  for (int64_t n = 0; n < N; ++n) count += to_acc(mask[b * ms.b + n * ms.n]);
  const A inv = count != A(0) ? A(1) / count : A(0);
  // The pooled output reads y with weight m: its gradient reaches y as m * coef.
  const A coef = t < H ? to_acc(gp[b * 2 * H + t]) * inv + to_acc(gp[b * 2 * H + H + t]) * scale : A(0);
  const A b1 = t < H1 ? to_acc(bias1[b * H1 + t]) : A(0);
  A g1 = 0, g2 = 0;
  for (int64_t n0 = 0; n0 < N; n0 += kTile) {
    if (t < kTile) m_t[t] = n0 + t < N ? to_acc(mask[b * ms.b + (n0 + t) * ms.n]) : A(0);
    __syncthreads();
    for (int p = 0; p < kTile; ++p) {
      if (m_t[p] == A(0)) continue;
      for (int f = t; f < H; f += blockDim.x) xs_t[p * H + f] = to_acc(x[b * xs.b + (n0 + p) * xs.n + f * xs.d]);
    }
    __syncthreads();
    if (t < H1) {  // recompute h rather than store it in the forward
      A acc[kTile];
      for (int p = 0; p < kTile; ++p) acc[p] = b1;
      for (int k = 0; k < H; ++k) {
        const A w = to_acc(w1t[k * H1 + t]);
        for (int p = 0; p < kTile; ++p) acc[p] += xs_t[p * H + k] * w;
      }
      for (int p = 0; p < kTile && n0 + p < N; ++p) {
        const A hv = m_t[p] != A(0) ? act(acc[p], slope) : A(0);
        hs_t[p * H1 + t] = hv;
        h_out[(b * N + n0 + p) * H1 + t] = from_acc<T>(hv);
      }
    }
    if (t < H) {
      for (int p = 0; p < kTile; ++p) {
        const A m = m_t[p];
        A d = A(0);
        if (m != A(0)) {
          const int64_t i = (b * N + n0 + p) * H + t;
          // z2 > 0 where y = m * act(z2) has m's sign (a negative weight flips it).
          d = (to_acc(gy[i]) + m * coef) * m * act_grad_out((m > A(0) ? A(1) : A(-1)) * to_acc(y[i]), slope);
          g2 += d;
        }
        d2_t[p * H + t] = d;
        if (n0 + p < N) dz2[(b * N + n0 + p) * H + t] = from_acc<T>(d);
      }
    }
    __syncthreads();
    if (t < H1) {
      A acc[kTile];
      for (int p = 0; p < kTile; ++p) acc[p] = A(0);
      for (int f = 0; f < H; ++f) {
        const A w = to_acc(w2[f * H1 + t]);
        for (int p = 0; p < kTile; ++p) acc[p] += d2_t[p * H + f] * w;
      }
      for (int p = 0; p < kTile; ++p) {
        const A d = m_t[p] != A(0) ? acc[p] * act_grad_out(hs_t[p * H1 + t], slope) : A(0);
        g1 += d;
        hs_t[p * H1 + t] = d;  // only this thread reads its own column of hs_t
        if (n0 + p < N) dz1[(b * N + n0 + p) * H1 + t] = from_acc<T>(d);
      }
    }
    __syncthreads();
    if (t < H) {
      A acc[kTile];
      for (int p = 0; p < kTile; ++p) acc[p] = d2_t[p * H + t];  // the residual path
      for (int j = 0; j < H1; ++j) {
        const A w = to_acc(w1[j * H + t]);
        for (int p = 0; p < kTile; ++p) acc[p] += hs_t[p * H1 + j] * w;
      }
      for (int p = 0; p < kTile && n0 + p < N; ++p)
        dx[(b * N + n0 + p) * H + t] = from_acc<T>(m_t[p] != A(0) ? acc[p] : A(0));
    }
    __syncthreads();
  }
  if (t < H) gb2[b * H + t] = from_acc<T>(g2);
  if (t < H1) gb1[b * H1 + t] = from_acc<T>(g1);
}

unsigned threads_for(int64_t H, int64_t H1) {
  const int64_t w = H > H1 ? H : H1;
  const int64_t t = ((w + 31) / 32) * 32;
  return static_cast<unsigned>(t < kTile ? 32 : t);
}

template <typename T> Status forward(const void* x, const int64_t xs[3], const void* mask, const int64_t ms[2],
                                     const void* w1t, const void* b1, const void* w2t, const void* b2, int64_t B,
                                     int64_t N, int64_t H, int64_t H1, double slope, double scale, void* y,
                                     void* pooled, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  const size_t smem = sizeof(A) * kTile * (H + H1);
  forward_kernel<T><<<static_cast<unsigned>(B), threads_for(H, H1), smem, stream>>>(
      static_cast<const T*>(x), S3{xs[0], xs[1], xs[2]}, static_cast<const T*>(mask), S2{ms[0], ms[1]},
      static_cast<const T*>(w1t), static_cast<const T*>(b1), static_cast<const T*>(w2t), static_cast<const T*>(b2), N,
      static_cast<int>(H), static_cast<int>(H1), static_cast<A>(slope), static_cast<A>(scale), static_cast<T*>(y),
      static_cast<T*>(pooled));
  return launch_status();
}

template <typename T> Status backward(const void* gy, const void* gp, const void* x, const int64_t xs[3], const void* y,
                                      const void* mask, const int64_t ms[2], const void* w1, const void* w1t,
                                      const void* b1, const void* w2, int64_t B, int64_t N, int64_t H, int64_t H1,
                                      double slope, double scale, void* dx, void* dz1, void* h, void* dz2, void* gb1,
                                      void* gb2, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  const size_t smem = sizeof(A) * kTile * (2 * H + H1);
  backward_kernel<T><<<static_cast<unsigned>(B), threads_for(H, H1), smem, stream>>>(
      static_cast<const T*>(gy), static_cast<const T*>(gp), static_cast<const T*>(x), S3{xs[0], xs[1], xs[2]},
      static_cast<const T*>(y), static_cast<const T*>(mask), S2{ms[0], ms[1]}, static_cast<const T*>(w1),
      static_cast<const T*>(w1t), static_cast<const T*>(b1), static_cast<const T*>(w2), N, static_cast<int>(H),
      static_cast<int>(H1), static_cast<A>(slope), static_cast<A>(scale), static_cast<T*>(dx), static_cast<T*>(dz1),
      static_cast<T*>(h), static_cast<T*>(dz2), static_cast<T*>(gb1), static_cast<T*>(gb2));
  return launch_status();
}

// One block per set (grid x ≤ 2^31 - 1), one thread per feature (≤ 1024), and kTile rows of
// 2H + H1 accumulators in shared memory within the default 48 KiB (f32: H = H1 = 512 fits).
bool sizes_ok(int64_t B, int64_t N, int64_t H, int64_t H1, size_t acc_bytes) {
  if (B < 0 || N < 0 || H < 0 || H1 < 0 || H > 1024 || H1 > 1024 || B > kMaxGrid) return false;
  return acc_bytes * kTile * (2 * H + H1) <= 48 * 1024;
}

}  // namespace

#define HEPGEN_CUDA_DISPATCH(dtype, CALL) \
  switch (dtype) {                        \
    case DType::f32: {                    \
      using T = float;                    \
      return CALL;                        \
    }                                     \
    case DType::f64: {                    \
      using T = double;                   \
      return CALL;                        \
    }                                     \
    case DType::f16: {                    \
      using T = __half;                   \
      return CALL;                        \
    }                                     \
    case DType::bf16: {                   \
      using T = __nv_bfloat16;            \
      return CALL;                        \
    }                                     \
    default: break;                       \
  }                                       \
  return Status::unsupported_dtype;

Status epic_local_forward(const TensorView& x, const TensorView& mask, const TensorView& w1t, const TensorView& bias1,
                          const TensorView& w2t, const TensorView& bias2, double slope, double sum_scale,
                          const TensorView& y, const TensorView& pooled, void* stream) {
  args::Backend be;
  HEPGEN_TRY(cuda_backend(&be));
  HEPGEN_TRY(args::epic_local_forward(be, x, mask, w1t, bias1, w2t, bias2, y, pooled));
  const int64_t B = x.shape[0], N = x.shape[1], H = x.shape[2], H1 = w1t.shape[1];
  const size_t acc = x.dtype == DType::f64 ? 8 : 4;
  if (!sizes_ok(B, N, H, H1, acc))
    return fail(Status::invalid_argument,
                "epic_local (cuda): features %lld and hidden %lld must be <= 1024 and fit the kernel's shared memory, "
                "and batch %lld one grid",
                static_cast<long long>(H), static_cast<long long>(H1), static_cast<long long>(B));
  if (B == 0 || H == 0) return Status::ok;
  const int64_t xs[3] = {x.strides[0], x.strides[1], x.strides[2]};
  const int64_t ms[2] = {mask.strides[0], mask.strides[1]};
  auto s = static_cast<cudaStream_t>(stream);
  HEPGEN_CUDA_DISPATCH(x.dtype, forward<T>(x.data, xs, mask.data, ms, w1t.data, bias1.data, w2t.data, bias2.data, B, N,
                                           H, H1, slope, sum_scale, y.data, pooled.data, s))
}

Status epic_local_backward(const TensorView& grad_y, const TensorView& grad_pooled, const TensorView& x,
                           const TensorView& y, const TensorView& mask, const TensorView& w1, const TensorView& w1t,
                           const TensorView& bias1, const TensorView& w2, double slope, double sum_scale,
                           const TensorView& dx, const TensorView& dz1, const TensorView& h, const TensorView& dz2,
                           const TensorView& grad_bias1, const TensorView& grad_bias2, void* stream) {
  args::Backend be;
  HEPGEN_TRY(cuda_backend(&be));
  HEPGEN_TRY(args::epic_local_backward(be, grad_y, grad_pooled, x, y, mask, w1, w1t, bias1, w2, dx, dz1, h, dz2,
                                       grad_bias1, grad_bias2));
  const int64_t B = x.shape[0], N = x.shape[1], H = x.shape[2], H1 = w1.shape[0];
  const size_t acc = x.dtype == DType::f64 ? 8 : 4;
  if (!sizes_ok(B, N, H, H1, acc))
    return fail(Status::invalid_argument,
                "epic_local (cuda): features %lld and hidden %lld must be <= 1024 and fit the kernel's shared memory, "
                "and batch %lld one grid",
                static_cast<long long>(H), static_cast<long long>(H1), static_cast<long long>(B));
  if (B == 0 || (H == 0 && H1 == 0)) return Status::ok;
  const int64_t xs[3] = {x.strides[0], x.strides[1], x.strides[2]};
  const int64_t ms[2] = {mask.strides[0], mask.strides[1]};
  auto s = static_cast<cudaStream_t>(stream);
  HEPGEN_CUDA_DISPATCH(x.dtype, backward<T>(grad_y.data, grad_pooled.data, x.data, xs, y.data, mask.data, ms, w1.data,
                                            w1t.data, bias1.data, w2.data, B, N, H, H1, slope, sum_scale, dx.data,
                                            dz1.data, h.data, dz2.data, grad_bias1.data, grad_bias2.data, s))
}

#undef HEPGEN_CUDA_DISPATCH

}  // namespace cuda
}  // namespace hepgen
