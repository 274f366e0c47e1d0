// The local update of an EPiC layer fused with the pooling the next global update needs.
//
// Per particle n of set b (H features in, H1 hidden), with per-set biases that carry the
// global vector, time and conditioning (computed once per set by the caller):
//   z1 = W1 x + bias1[b]              h  = act(z1)            act = LeakyReLU(slope)
//   z2 = W2 h + bias2[b] + x          y  = mask[b, n] * act(z2)
//   pooled[b] = [ Σ_n m y / Σ_n m ,  sum_scale · Σ_n m y ]   (mean 0 for an empty set)
// Padded particles (mask 0) are not computed; their y is 0.
//
// The CPU core does not multiply matrices: on the CPU a BLAS GEMM over the packed real
// particles is faster than any portable hand-written loop (measured: docs/epic.md), so the
// caller runs the two GEMMs and these passes fuse everything around them. "Packed" means
// the real particles only, set after set, particle order kept; set b's rows are
// [offsets[b], offsets[b + 1]). The padded layout is [B, N, ·] with the mask [B, N].
// CUDA runs the whole forward in one kernel per set (weights passed transposed).
#pragma once

#include "hepgen/tensor_view.h"

namespace hepgen {

// h = act(z + bias[set]) in place on packed rows z [M, F] (dense); bias [B, F] dense;
// offsets [B + 1] int64 (rows counted from offsets[0]: z may be a chunk of whole sets).
HEPGEN_API Status epic_bias_act(const TensorView& z, const TensorView& bias, const TensorView& offsets, double slope);

// The forward epilogue: from packed z2 = W2 h (no bias) [M, H] and packed x [M, H] (dense),
// bias2 [B, H] dense, mask [B, N] strided (x's dtype), offsets [B + 1] relative as above:
// y [B, N, H] (dense, zero on padding) and pooled [B, 2H] (dense).
HEPGEN_API Status epic_residual_pool(const TensorView& z2, const TensorView& x, const TensorView& bias2,
                                     const TensorView& mask, const TensorView& offsets, double slope, double sum_scale,
                                     const TensorView& y, const TensorView& pooled);

// Backward, first pass: from grad_y [B, N, H], grad_pooled [B, 2H] and the forward's y
// [B, N, H] (dense), dz2 on packed rows [M, H] and grad_bias2 [B, H] (= Σ_n dz2). Offsets
// from row 0 (offsets[0] == 0, offsets[B] == M), here and below.
HEPGEN_API Status epic_output_grad(const TensorView& grad_y, const TensorView& grad_pooled, const TensorView& y,
                                   const TensorView& mask, const TensorView& offsets, double slope, double sum_scale,
                                   const TensorView& dz2, const TensorView& grad_bias2);

// Backward, second pass: dz1 = dh * act'(z1) in place on packed dh [M, F] (h = act(z1) is
// given; its sign is z1's), and grad_bias1 [B, F] = Σ_n dz1.
HEPGEN_API Status epic_act_grad(const TensorView& dh, const TensorView& h, const TensorView& offsets, double slope,
                                const TensorView& grad_bias1);

// Scatter packed rows [M, F] into the padded layout [B, N, F] (dense), zero on padding.
HEPGEN_API Status epic_unpack(const TensorView& packed, const TensorView& mask, const TensorView& offsets,
                              const TensorView& padded);

namespace cuda {

// The whole forward on the padded layout, one block per set. x [B, N, H] strided, mask
// [B, N] strided; w1t = W1ᵀ [H, H1] and w2t = W2ᵀ [H1, H] dense; bias1 [B, H1], bias2 [B, H]
// dense; y [B, N, H], pooled [B, 2H] dense. dtypes f32, f64, f16, bf16 (half types
// accumulate in f32). H, H1 ≤ 1024.
HEPGEN_API Status epic_local_forward(const TensorView& x, const TensorView& mask, const TensorView& w1t,
                                     const TensorView& bias1, const TensorView& w2t, const TensorView& bias2,
                                     double slope, double sum_scale, const TensorView& y, const TensorView& pooled,
                                     void* stream);

// The backward on the padded layout, one block per set: dx [B, N, H], and for the weight
// gradients (GEMMs left to the caller) dz1 [B, N, H1], h [B, N, H1], dz2 [B, N, H] with
// zeros on padding; grad_bias1 [B, H1], grad_bias2 [B, H]. x, mask as in the forward;
// grad_y, grad_pooled, y dense; w1 = W1 [H1, H], w1t = W1ᵀ and w2 = W2 [H, H1] dense (not
// transposed: the backward reads them the other way round).
HEPGEN_API Status epic_local_backward(const TensorView& grad_y, const TensorView& grad_pooled, const TensorView& x,
                                      const TensorView& y, const TensorView& mask, const TensorView& w1,
                                      const TensorView& w1t, const TensorView& bias1, const TensorView& w2,
                                      double slope, double sum_scale, const TensorView& dx, const TensorView& dz1,
                                      const TensorView& h, const TensorView& dz2, const TensorView& grad_bias1,
                                      const TensorView& grad_bias2, void* stream);

}  // namespace cuda
}  // namespace hepgen
