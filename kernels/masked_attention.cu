// Masked attention on CUDA (see hepgen/masked_attention.h for the maths).
//
// Sequences are short (L <= ~150) and heads narrow (Dh <= 128), so the kernels are plain SIMT
// code built around one warp per row: a block of 4 warps owns a tile of 16 rows (4 per warp)
// and walks the other side in tiles of 32 staged in shared memory, one per lane. A lane
// computes one score (a dot product over Dh from shared memory); the warp reduces max and
// sum with shuffles; each lane accumulates 4 of the row's Dh outputs (d = lane + 32 c).
// Softmax is online (flash-attention style), so any L works. Half types accumulate in float.
//
//   forward_kernel:  rows = queries, tiles of keys    -> out, lse
//   dq_kernel:       rows = queries, tiles of keys    -> dq   (recomputes p from lse)
//   dkdv_kernel:     rows = keys,    tiles of queries -> dk, dv
//   decode_kernel:   one warp per (sequence, head) over the cache
// The two backward kernels write disjoint outputs: no atomics.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "cuda_check.cuh"
#include "cuda_types.cuh"
#include "hepgen/masked_attention.h"

namespace hepgen {
namespace cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 4;
constexpr int kRowTile = kWarps * kRowsPerWarp;  // 16 rows per block
constexpr int kTile = 32;                        // one key (or query) per lane
constexpr int kMaxChunks = 4;                    // Dh <= 32 * 4

__device__ __forceinline__ float exp_(float x) { return __expf(x); }
__device__ __forceinline__ double exp_(double x) { return exp(x); }
__device__ __forceinline__ float log_(float x) { return __logf(x); }
__device__ __forceinline__ double log_(double x) { return log(x); }

template <typename A> __device__ __forceinline__ A warp_max(A v) {
  for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
template <typename A> __device__ __forceinline__ A warp_sum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Dot product of two unit-stride rows in four independent chains, added pairwise at the end.
// One sequential chain lets the rounding error grow with the partial sums, which at scores of
// order 100 left the gradients ~9x further from the float64 reference than PyTorch's own float32
// (measured on an H100); four chains also give the loop more independent work. The forward and
// both backward kernels call this one function, so a backward pass recomputes the forward's
// scores bit for bit (p = exp(s - lse) stays consistent with the saved lse).
template <typename A> __device__ __forceinline__ A row_dot(const A* __restrict__ a, const A* __restrict__ b, int n) {
  A c0 = A(0), c1 = A(0), c2 = A(0), c3 = A(0);
  int d = 0;
  for (; d + 4 <= n; d += 4) {
    c0 += a[d] * b[d];
    c1 += a[d + 1] * b[d + 1];
    c2 += a[d + 2] * b[d + 2];
    c3 += a[d + 3] * b[d + 3];
  }
  for (; d < n; ++d) c0 += a[d] * b[d];
  return (c0 + c1) + (c2 + c3);
}

struct S4 {
  int64_t b, h, l, d;
};
struct Shape {
  int64_t B, H, L, D;
};

template <typename A> __device__ __forceinline__ A infinity() { return A(INFINITY); }

// Stages rows [r0, r0 + n) of one head (strided) into shared memory with row pitch `pitch`,
// times `mul`; rows past L or padded (mask) become 0. Returns nothing; valid[] gets the flags.
template <typename T, typename A> __device__ void stage(A* dst, int pitch, const T* src, S4 s, int64_t b, int64_t h,
                                                        int64_t r0, int n, const Shape& sh, A mul, const uint8_t* mask,
                                                        const int64_t* ms, int* valid) {
  for (int e = threadIdx.x; e < n * sh.D; e += blockDim.x) {
    const int r = e / sh.D, d = e % sh.D;
    const int64_t row = r0 + r;
    bool ok = row < sh.L && (!mask || mask[b * ms[0] + row * ms[1]]);
    dst[r * pitch + d] = ok ? load(src + b * s.b + h * s.h + row * s.l + d * s.d) * mul : A(0);
    if (valid && d == 0) valid[r] = ok;
  }
}

template <typename T> __global__ void forward_kernel(const T* __restrict__ q, S4 qs, const T* __restrict__ k, S4 ks,
                                                     const T* __restrict__ v, S4 vs, const uint8_t* __restrict__ mask,
                                                     int64_t ms0, int64_t ms1, Shape sh, bool causal,
                                                     typename Acc<T>::type scale, T* __restrict__ out,
                                                     typename Acc<T>::type* __restrict__ lse) {
  using A = typename Acc<T>::type;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  A* Qs = reinterpret_cast<A*>(smem_raw);  // [kRowTile][D]
  A* Ks = Qs + kRowTile * sh.D;            // [kTile][D + 1]
  A* Vs = Ks + kTile * (sh.D + 1);         // [kTile][D]
  int* valid = reinterpret_cast<int*>(Vs + kTile * sh.D);
  const int64_t ms[2] = {ms0, ms1};
  const int64_t bh = blockIdx.x, b = bh / sh.H, h = bh % sh.H;
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * kRowTile;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  stage(Qs, static_cast<int>(sh.D), q, qs, b, h, i0, kRowTile, sh, scale, nullptr, ms, nullptr);

  A m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kMaxChunks];
  for (int r = 0; r < kRowsPerWarp; ++r) {
    m[r] = -infinity<A>();
    l[r] = A(0);
    for (int c = 0; c < kMaxChunks; ++c) acc[r][c] = A(0);
  }
  const int64_t key_end = causal ? min(sh.L, i0 + kRowTile) : sh.L;
  for (int64_t j0 = 0; j0 < key_end; j0 += kTile) {
    __syncthreads();
    stage(Ks, static_cast<int>(sh.D + 1), k, ks, b, h, j0, kTile, sh, A(1), mask, ms, valid);
    stage(Vs, static_cast<int>(sh.D), v, vs, b, h, j0, kTile, sh, A(1), mask, ms, nullptr);
    __syncthreads();
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int ri = warp * kRowsPerWarp + r;
      const int64_t i = i0 + ri, j = j0 + lane;
      if (i >= sh.L) break;  // uniform across the warp
      const bool ok = valid[lane] && (!causal || j <= i);
      A s = -infinity<A>();
      if (ok) s = row_dot(Qs + ri * sh.D, Ks + lane * (sh.D + 1), static_cast<int>(sh.D));
      const A m_new = fmax(m[r], warp_max(s));
      if (m_new == -infinity<A>()) continue;  // nothing admissible yet for this row
      const A p = ok ? exp_(s - m_new) : A(0);
      const A corr = exp_(m[r] - m_new);
      l[r] = l[r] * corr + warp_sum(p);
      for (int c = 0; c < kMaxChunks; ++c) acc[r][c] *= corr;
      for (int jj = 0; jj < kTile; ++jj) {
        const A pj = __shfl_sync(0xffffffffu, p, jj);
        for (int c = 0; c < kMaxChunks; ++c) {
          const int d = lane + 32 * c;
          if (d < sh.D) acc[r][c] += pj * Vs[jj * sh.D + d];
        }
      }
      m[r] = m_new;
    }
  }
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t i = i0 + warp * kRowsPerWarp + r;
    if (i >= sh.L) break;
    const bool empty = l[r] == A(0);
    const A inv = empty ? A(0) : A(1) / l[r];
    T* o = out + (bh * sh.L + i) * sh.D;
    for (int c = 0; c < kMaxChunks; ++c) {
      const int d = lane + 32 * c;
      if (d < sh.D) o[d] = store<T>(acc[r][c] * inv);
    }
    if (lane == 0) lse[bh * sh.L + i] = empty ? infinity<A>() : m[r] + log_(l[r]);
  }
}

template <typename T>
__global__ void dq_kernel(const T* __restrict__ grad_out, const T* __restrict__ q, S4 qs, const T* __restrict__ k,
                          S4 ks, const T* __restrict__ v, S4 vs, const uint8_t* __restrict__ mask, int64_t ms0,
                          int64_t ms1, const T* __restrict__ out, const typename Acc<T>::type* __restrict__ lse,
                          Shape sh, bool causal, typename Acc<T>::type scale, T* __restrict__ grad_q) {
  using A = typename Acc<T>::type;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  A* Qs = reinterpret_cast<A*>(smem_raw);  // [kRowTile][D], scaled
  A* Gs = Qs + kRowTile * sh.D;            // [kRowTile][D]: grad_out rows
  A* Ks = Gs + kRowTile * sh.D;            // [kTile][D + 1]
  A* Vs = Ks + kTile * (sh.D + 1);         // [kTile][D + 1]
  int* valid = reinterpret_cast<int*>(Vs + kTile * (sh.D + 1));
  const int64_t ms[2] = {ms0, ms1};
  const int64_t bh = blockIdx.x, b = bh / sh.H, h = bh % sh.H;
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * kRowTile;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const S4 dense{sh.H * sh.L * sh.D, sh.L * sh.D, sh.D, 1};
  stage(Qs, static_cast<int>(sh.D), q, qs, b, h, i0, kRowTile, sh, scale, nullptr, ms, nullptr);
  stage(Gs, static_cast<int>(sh.D), grad_out, dense, b, h, i0, kRowTile, sh, A(1), nullptr, ms, nullptr);
  __syncthreads();
  // delta_i = dO_i . out_i and lse_i, per row of this warp.
  A delta[kRowsPerWarp], row_lse[kRowsPerWarp], dq[kRowsPerWarp][kMaxChunks];
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int ri = warp * kRowsPerWarp + r;
    const int64_t i = i0 + ri;
    A part = A(0);
    if (i < sh.L)
      for (int d = lane; d < sh.D; d += 32) part += Gs[ri * sh.D + d] * load(out + (bh * sh.L + i) * sh.D + d);
    delta[r] = warp_sum(part);
    row_lse[r] = i < sh.L ? lse[bh * sh.L + i] : infinity<A>();
    for (int c = 0; c < kMaxChunks; ++c) dq[r][c] = A(0);
  }
  const int64_t key_end = causal ? min(sh.L, i0 + kRowTile) : sh.L;
  for (int64_t j0 = 0; j0 < key_end; j0 += kTile) {
    __syncthreads();
    stage(Ks, static_cast<int>(sh.D + 1), k, ks, b, h, j0, kTile, sh, A(1), mask, ms, valid);
    stage(Vs, static_cast<int>(sh.D + 1), v, vs, b, h, j0, kTile, sh, A(1), mask, ms, nullptr);
    __syncthreads();
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int ri = warp * kRowsPerWarp + r;
      const int64_t i = i0 + ri, j = j0 + lane;
      if (i >= sh.L || row_lse[r] == infinity<A>()) continue;  // uniform across the warp
      const bool ok = valid[lane] && (!causal || j <= i);
      A ds = A(0);
      if (ok) {
        const int D = static_cast<int>(sh.D);
        const A s = row_dot(Qs + ri * sh.D, Ks + lane * (sh.D + 1), D);
        const A dp = row_dot(Gs + ri * sh.D, Vs + lane * (sh.D + 1), D);
        ds = exp_(s - row_lse[r]) * (dp - delta[r]);
      }
      for (int jj = 0; jj < kTile; ++jj) {
        const A dsj = __shfl_sync(0xffffffffu, ds, jj);
        for (int c = 0; c < kMaxChunks; ++c) {
          const int d = lane + 32 * c;
          if (d < sh.D) dq[r][c] += dsj * Ks[jj * (sh.D + 1) + d];
        }
      }
    }
  }
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t i = i0 + warp * kRowsPerWarp + r;
    if (i >= sh.L) break;
    T* g = grad_q + (bh * sh.L + i) * sh.D;
    for (int c = 0; c < kMaxChunks; ++c) {
      const int d = lane + 32 * c;
      if (d < sh.D) g[d] = store<T>(dq[r][c] * scale);
    }
  }
}

template <typename T>
__global__ void dkdv_kernel(const T* __restrict__ grad_out, const T* __restrict__ q, S4 qs, const T* __restrict__ k,
                            S4 ks, const T* __restrict__ v, S4 vs, const uint8_t* __restrict__ mask, int64_t ms0,
                            int64_t ms1, const T* __restrict__ out, const typename Acc<T>::type* __restrict__ lse,
                            Shape sh, bool causal, typename Acc<T>::type scale, T* __restrict__ grad_k,
                            T* __restrict__ grad_v) {
  using A = typename Acc<T>::type;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  A* Ks = reinterpret_cast<A*>(smem_raw);           // [kRowTile][D]: this block's keys
  A* Vs = Ks + kRowTile * sh.D;                     // [kRowTile][D]
  A* Qs = Vs + kRowTile * sh.D;                     // [kTile][D + 1], scaled
  A* Gs = Qs + kTile * (sh.D + 1);                  // [kTile][D + 1]: grad_out rows
  A* Ls = Gs + kTile * (sh.D + 1);                  // [kTile]: lse
  A* Ds = Ls + kTile;                               // [kTile]: delta
  int* valid = reinterpret_cast<int*>(Ds + kTile);  // [kRowTile]: real keys
  const int64_t ms[2] = {ms0, ms1};
  const int64_t bh = blockIdx.x, b = bh / sh.H, h = bh % sh.H;
  const int64_t j0 = static_cast<int64_t>(blockIdx.y) * kRowTile;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const S4 dense{sh.H * sh.L * sh.D, sh.L * sh.D, sh.D, 1};
  stage(Ks, static_cast<int>(sh.D), k, ks, b, h, j0, kRowTile, sh, A(1), mask, ms, valid);
  stage(Vs, static_cast<int>(sh.D), v, vs, b, h, j0, kRowTile, sh, A(1), mask, ms, nullptr);
  A dk[kRowsPerWarp][kMaxChunks], dv[kRowsPerWarp][kMaxChunks];
  for (int r = 0; r < kRowsPerWarp; ++r)
    for (int c = 0; c < kMaxChunks; ++c) dk[r][c] = dv[r][c] = A(0);
  for (int64_t t0 = causal ? j0 : 0; t0 < sh.L; t0 += kTile) {  // causal: queries i >= j0 only
    __syncthreads();
    stage(Qs, static_cast<int>(sh.D + 1), q, qs, b, h, t0, kTile, sh, scale, nullptr, ms, nullptr);
    stage(Gs, static_cast<int>(sh.D + 1), grad_out, dense, b, h, t0, kTile, sh, A(1), nullptr, ms, nullptr);
    // lse and delta_i = dO_i . out_i of the tile's queries, one warp per query.
    for (int t = warp; t < kTile; t += kWarps) {
      const int64_t i = t0 + t;
      A part = A(0);
      if (i < sh.L)
        for (int d = lane; d < sh.D; d += 32)
          part += load(grad_out + (bh * sh.L + i) * sh.D + d) * load(out + (bh * sh.L + i) * sh.D + d);
      part = warp_sum(part);
      if (lane == 0) {
        Ds[t] = part;
        Ls[t] = i < sh.L ? lse[bh * sh.L + i] : infinity<A>();
      }
    }
    __syncthreads();
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int rj = warp * kRowsPerWarp + r;
      const int64_t j = j0 + rj, i = t0 + lane;
      if (j >= sh.L || !valid[rj]) continue;  // uniform: padded keys keep zero gradients
      const bool ok = i < sh.L && Ls[lane] != infinity<A>() && (!causal || j <= i);
      A p = A(0), ds = A(0);
      if (ok) {
        const int D = static_cast<int>(sh.D);
        const A s = row_dot(Qs + lane * (sh.D + 1), Ks + rj * sh.D, D);
        const A dp = row_dot(Gs + lane * (sh.D + 1), Vs + rj * sh.D, D);
        p = exp_(s - Ls[lane]);
        ds = p * (dp - Ds[lane]);
      }
      for (int ii = 0; ii < kTile; ++ii) {
        const A pi = __shfl_sync(0xffffffffu, p, ii);
        const A dsi = __shfl_sync(0xffffffffu, ds, ii);
        for (int c = 0; c < kMaxChunks; ++c) {
          const int d = lane + 32 * c;
          if (d < sh.D) {
            dv[r][c] += pi * Gs[ii * (sh.D + 1) + d];
            dk[r][c] += dsi * Qs[ii * (sh.D + 1) + d];  // Qs is already scaled
          }
        }
      }
    }
  }
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t j = j0 + warp * kRowsPerWarp + r;
    if (j >= sh.L) break;
    T* gk = grad_k + (bh * sh.L + j) * sh.D;
    T* gv = grad_v + (bh * sh.L + j) * sh.D;
    for (int c = 0; c < kMaxChunks; ++c) {
      const int d = lane + 32 * c;
      if (d < sh.D) {
        gk[d] = store<T>(dk[r][c]);
        gv[d] = store<T>(dv[r][c]);
      }
    }
  }
}

template <typename T> __global__ void decode_kernel(const T* __restrict__ q, S4 qs, const T* __restrict__ k_new, S4 kns,
                                                    const T* __restrict__ v_new, S4 vns, T* __restrict__ k_cache,
                                                    S4 kcs, T* __restrict__ v_cache, S4 vcs,
                                                    const int64_t* __restrict__ lengths, Shape sh,
                                                    typename Acc<T>::type scale, T* __restrict__ out) {
  // One warp per (sequence, head); sh.L is the cache capacity Lmax.
  using A = typename Acc<T>::type;
  __shared__ A qrow[32 * kMaxChunks];
  const int64_t bh = blockIdx.x, b = bh / sh.H, h = bh % sh.H;
  const int lane = threadIdx.x;
  const int64_t len = lengths[b];
  T* o = out + bh * sh.D;
  if (len < 0 || len >= sh.L) {  // full cache (unchecked on the GPU): write nothing, say NaN
    for (int d = lane; d < sh.D; d += 32) o[d] = store<T>(A(NAN));
    return;
  }
  const T* kn = k_new + b * kns.b + h * kns.h;
  const T* vn = v_new + b * vns.b + h * vns.h;
  T* kc = k_cache + b * kcs.b + h * kcs.h;
  T* vc = v_cache + b * vcs.b + h * vcs.h;
  for (int d = lane; d < sh.D; d += 32) {
    qrow[d] = load(q + b * qs.b + h * qs.h + d * qs.d) * scale;
    kc[len * kcs.l + d * kcs.d] = kn[d * kns.d];
    vc[len * vcs.l + d * vcs.d] = vn[d * vns.d];
  }
  __syncwarp();
  // The new token is read from k_new/v_new, never back from the cache just written.
  A m = -infinity<A>(), l = A(0), acc[kMaxChunks] = {};
  for (int64_t j0 = 0; j0 <= len; j0 += 32) {
    const int64_t j = j0 + lane;
    A s = -infinity<A>();
    if (j <= len) {
      const T* kj = j == len ? kn : kc + j * kcs.l;
      const int64_t sd = j == len ? kns.d : kcs.d;
      s = A(0);
      for (int d = 0; d < sh.D; ++d) s += qrow[d] * load(kj + d * sd);
    }
    const A m_new = fmax(m, warp_max(s));
    const A p = j <= len ? exp_(s - m_new) : A(0);
    const A corr = exp_(m - m_new);
    l = l * corr + warp_sum(p);
    for (int c = 0; c < kMaxChunks; ++c) acc[c] *= corr;
    const int64_t n = len - j0 + 1 < 32 ? len - j0 + 1 : 32;
    for (int jj = 0; jj < n; ++jj) {
      const A pj = __shfl_sync(0xffffffffu, p, jj);
      const T* vj = j0 + jj == len ? vn : vc + (j0 + jj) * vcs.l;
      const int64_t sd = j0 + jj == len ? vns.d : vcs.d;
      for (int c = 0; c < kMaxChunks; ++c) {
        const int d = lane + 32 * c;
        if (d < sh.D) acc[c] += pj * load(vj + d * sd);
      }
    }
    m = m_new;
  }
  for (int c = 0; c < kMaxChunks; ++c) {
    const int d = lane + 32 * c;
    if (d < sh.D) o[d] = store<T>(acc[c] / l);
  }
}

S4 s4(const int64_t* s) { return {s[0], s[1], s[2], s[3]}; }

// Dynamic shared memory beyond 48 KiB must be opted into per kernel.
template <typename K> Status set_smem(K kernel, size_t bytes) {
  if (bytes > 48 * 1024) {
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)) !=
        cudaSuccess)
      return launch_status();
  }
  return Status::ok;
}

constexpr int64_t kMaxGridY = 65535;

template <typename T> Status launch_forward(const void* q, const int64_t* qs, const void* k, const int64_t* ks,
                                            const void* v, const int64_t* vs, const uint8_t* mask, const int64_t* ms,
                                            Shape sh, bool causal, double scale, void* out, void* lse,
                                            cudaStream_t st) {
  using A = typename Acc<T>::type;
  const size_t bytes = sizeof(A) * (kRowTile * sh.D + kTile * (sh.D + 1) + kTile * sh.D) + sizeof(int) * kTile;
  Status s = set_smem(forward_kernel<T>, bytes);
  if (s != Status::ok) return s;
  const dim3 grid(static_cast<unsigned>(sh.B * sh.H), static_cast<unsigned>((sh.L + kRowTile - 1) / kRowTile));
  forward_kernel<T><<<grid, kWarps * 32, bytes, st>>>(static_cast<const T*>(q), s4(qs), static_cast<const T*>(k),
                                                      s4(ks), static_cast<const T*>(v), s4(vs), mask, mask ? ms[0] : 0,
                                                      mask ? ms[1] : 0, sh, causal, static_cast<A>(scale),
                                                      static_cast<T*>(out), static_cast<A*>(lse));
  return launch_status();
}

template <typename T> Status launch_backward(const void* g, const void* q, const int64_t* qs, const void* k,
                                             const int64_t* ks, const void* v, const int64_t* vs, const uint8_t* mask,
                                             const int64_t* ms, const void* out, const void* lse, Shape sh, bool causal,
                                             double scale, void* gq, void* gk, void* gv, cudaStream_t st) {
  using A = typename Acc<T>::type;
  const dim3 grid(static_cast<unsigned>(sh.B * sh.H), static_cast<unsigned>((sh.L + kRowTile - 1) / kRowTile));
  const int64_t m0 = mask ? ms[0] : 0, m1 = mask ? ms[1] : 0;
  const size_t dq_bytes = sizeof(A) * (2 * kRowTile * sh.D + 2 * kTile * (sh.D + 1)) + sizeof(int) * kTile;
  Status s = set_smem(dq_kernel<T>, dq_bytes);
  if (s != Status::ok) return s;
  dq_kernel<T><<<grid, kWarps * 32, dq_bytes, st>>>(
      static_cast<const T*>(g), static_cast<const T*>(q), s4(qs), static_cast<const T*>(k), s4(ks),
      static_cast<const T*>(v), s4(vs), mask, m0, m1, static_cast<const T*>(out), static_cast<const A*>(lse), sh,
      causal, static_cast<A>(scale), static_cast<T*>(gq));
  s = launch_status();
  if (s != Status::ok) return s;
  const size_t kv_bytes =
      sizeof(A) * (2 * kRowTile * sh.D + 2 * kTile * (sh.D + 1) + 2 * kTile) + sizeof(int) * kRowTile;
  s = set_smem(dkdv_kernel<T>, kv_bytes);
  if (s != Status::ok) return s;
  dkdv_kernel<T><<<grid, kWarps * 32, kv_bytes, st>>>(
      static_cast<const T*>(g), static_cast<const T*>(q), s4(qs), static_cast<const T*>(k), s4(ks),
      static_cast<const T*>(v), s4(vs), mask, m0, m1, static_cast<const T*>(out), static_cast<const A*>(lse), sh,
      causal, static_cast<A>(scale), static_cast<T*>(gk), static_cast<T*>(gv));
  return launch_status();
}

template <typename T> Status launch_decode(const void* q, const int64_t* qs, const void* kn, const int64_t* kns,
                                           const void* vn, const int64_t* vns, void* kc, const int64_t* kcs, void* vc,
                                           const int64_t* vcs, const int64_t* lengths, Shape sh, double scale,
                                           void* out, cudaStream_t st) {
  using A = typename Acc<T>::type;
  decode_kernel<T><<<static_cast<unsigned>(sh.B * sh.H), 32, 0, st>>>(
      static_cast<const T*>(q), s4(qs), static_cast<const T*>(kn), s4(kns), static_cast<const T*>(vn), s4(vns),
      static_cast<T*>(kc), s4(kcs), static_cast<T*>(vc), s4(vcs), lengths, sh, static_cast<A>(scale),
      static_cast<T*>(out));
  return launch_status();
}

}  // namespace

namespace {

// The CUDA kernels' own limits, beyond the shared checks.
Status cuda_limits(const TensorView& q, int64_t length) {
  const int64_t B = q.shape[0], H = q.shape[1], L = length, D = q.shape[3];
  if (D > 32 * kMaxChunks)
    return fail(Status::invalid_argument, "masked_attention (cuda): head_dim must be <= %d, got %lld", 32 * kMaxChunks,
                static_cast<long long>(D));
  if (B * H > 2147483647 || (L + kRowTile - 1) / kRowTile > kMaxGridY)
    return fail(Status::invalid_argument, "masked_attention (cuda): batch x heads %lld or length %lld exceeds one grid",
                static_cast<long long>(B * H), static_cast<long long>(L));
  return Status::ok;
}

}  // namespace

Status masked_attention_forward(const TensorView& q, const TensorView& k, const TensorView& v,
                                const TensorView* key_padding_mask, bool causal, double scale, const TensorView& out,
                                const TensorView& lse, void* stream) {
  args::Backend be;
  HEPGEN_TRY(cuda_backend(&be));
  HEPGEN_TRY(args::attention_scale(scale));
  HEPGEN_TRY(args::attention_forward(be, q, k, v, key_padding_mask, out, lse));
  HEPGEN_TRY(cuda_limits(q, q.shape[2]));
  const Shape sh{q.shape[0], q.shape[1], q.shape[2], q.shape[3]};
  if (sh.B * sh.H * sh.L == 0) return Status::ok;
  const int64_t qs[4] = {q.strides[0], q.strides[1], q.strides[2], q.strides[3]};
  const int64_t ks[4] = {k.strides[0], k.strides[1], k.strides[2], k.strides[3]};
  const int64_t vs[4] = {v.strides[0], v.strides[1], v.strides[2], v.strides[3]};
  const uint8_t* mask = key_padding_mask ? key_padding_mask->data_as<const uint8_t>() : nullptr;
  const int64_t ms[2] = {mask ? key_padding_mask->strides[0] : 0, mask ? key_padding_mask->strides[1] : 0};
  auto s = static_cast<cudaStream_t>(stream);
#define HEPGEN_FWD(T) \
  launch_forward<T>(q.data, qs, k.data, ks, v.data, vs, mask, ms, sh, causal, scale, out.data, lse.data, s)
  switch (q.dtype) {
    case DType::f32: return HEPGEN_FWD(float);
    case DType::f64: return HEPGEN_FWD(double);
    case DType::f16: return HEPGEN_FWD(__half);
    case DType::bf16: return HEPGEN_FWD(__nv_bfloat16);
    default: return Status::unsupported_dtype;
  }
#undef HEPGEN_FWD
}

Status masked_attention_backward(const TensorView& grad_out, const TensorView& q, const TensorView& k,
                                 const TensorView& v, const TensorView* key_padding_mask, const TensorView& out,
                                 const TensorView& lse, bool causal, double scale, const TensorView& grad_q,
                                 const TensorView& grad_k, const TensorView& grad_v, void* stream) {
  args::Backend be;
  HEPGEN_TRY(cuda_backend(&be));
  HEPGEN_TRY(args::attention_scale(scale));
  HEPGEN_TRY(args::attention_backward(be, grad_out, q, k, v, key_padding_mask, out, lse, grad_q, grad_k, grad_v));
  HEPGEN_TRY(cuda_limits(q, q.shape[2]));
  const Shape sh{q.shape[0], q.shape[1], q.shape[2], q.shape[3]};
  if (sh.B * sh.H * sh.L == 0) return Status::ok;
  const int64_t qs[4] = {q.strides[0], q.strides[1], q.strides[2], q.strides[3]};
  const int64_t ks[4] = {k.strides[0], k.strides[1], k.strides[2], k.strides[3]};
  const int64_t vs[4] = {v.strides[0], v.strides[1], v.strides[2], v.strides[3]};
  const uint8_t* mask = key_padding_mask ? key_padding_mask->data_as<const uint8_t>() : nullptr;
  const int64_t ms[2] = {mask ? key_padding_mask->strides[0] : 0, mask ? key_padding_mask->strides[1] : 0};
  auto s = static_cast<cudaStream_t>(stream);
#define HEPGEN_BWD(T)                                                                                             \
  launch_backward<T>(grad_out.data, q.data, qs, k.data, ks, v.data, vs, mask, ms, out.data, lse.data, sh, causal, \
                     scale, grad_q.data, grad_k.data, grad_v.data, s)
  switch (q.dtype) {
    case DType::f32: return HEPGEN_BWD(float);
    case DType::f64: return HEPGEN_BWD(double);
    case DType::f16: return HEPGEN_BWD(__half);
    case DType::bf16: return HEPGEN_BWD(__nv_bfloat16);
    default: return Status::unsupported_dtype;
  }
#undef HEPGEN_BWD
}

Status masked_attention_decode(const TensorView& q, const TensorView& k_new, const TensorView& v_new,
                               const TensorView& k_cache, const TensorView& v_cache, const TensorView& lengths,
                               double scale, const TensorView& out, void* stream) {
  args::Backend be;
  HEPGEN_TRY(cuda_backend(&be));
  HEPGEN_TRY(args::attention_scale(scale));
  HEPGEN_TRY(args::attention_decode(be, q, k_new, v_new, k_cache, v_cache, lengths, out));
  HEPGEN_TRY(cuda_limits(q, 1));
  const Shape sh{q.shape[0], q.shape[1], k_cache.shape[2], q.shape[3]};
  if (sh.B * sh.H == 0) return Status::ok;
  const int64_t qs[4] = {q.strides[0], q.strides[1], q.strides[2], q.strides[3]};
  const int64_t kns[4] = {k_new.strides[0], k_new.strides[1], k_new.strides[2], k_new.strides[3]};
  const int64_t vns[4] = {v_new.strides[0], v_new.strides[1], v_new.strides[2], v_new.strides[3]};
  const int64_t kcs[4] = {k_cache.strides[0], k_cache.strides[1], k_cache.strides[2], k_cache.strides[3]};
  const int64_t vcs[4] = {v_cache.strides[0], v_cache.strides[1], v_cache.strides[2], v_cache.strides[3]};
  const int64_t* len = lengths.data_as<const int64_t>();
  auto s = static_cast<cudaStream_t>(stream);
#define HEPGEN_DEC(T)                                                                                                  \
  launch_decode<T>(q.data, qs, k_new.data, kns, v_new.data, vns, k_cache.data, kcs, v_cache.data, vcs, len, sh, scale, \
                   out.data, s)
  switch (q.dtype) {
    case DType::f32: return HEPGEN_DEC(float);
    case DType::f64: return HEPGEN_DEC(double);
    case DType::f16: return HEPGEN_DEC(__half);
    case DType::bf16: return HEPGEN_DEC(__nv_bfloat16);
    default: return Status::unsupported_dtype;
  }
#undef HEPGEN_DEC
}

}  // namespace cuda
}  // namespace hepgen
