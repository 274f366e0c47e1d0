// Causal multi-head attention with a key-padding mask, and its KV-cache decode step.
//
// q, k, v are [B, H, L, Dh] with any strides (in elements). key_padding_mask is [B, L]
// bytes (nonzero = real token) with strides, or nullptr for "all real". Query i of sequence b
// may see key j when mask[b, j] != 0 and (j <= i or !causal). Then
//   s_ij = scale * q_i . k_j,   lse_i = log sum_j exp(s_ij),   out_i = sum_j exp(s_ij - lse_i) v_j.
// A query with no admissible key gets out_i = 0 and lse_i = +inf (so exp(s - lse) = 0 in the
// backward). Padded keys are never read.
//
// Outputs are dense: out [B, H, L, Dh] in the input dtype; lse [B, H, L] in float for
// f32/f16/bf16 and double for f64 (the accumulation type).
//
// Backward (flash-attention style, recomputing p from lse): with dO = grad_out (dense),
//   dv_j = sum_i p_ij dO_i,  ds_ij = p_ij (dO_i . v_j - dO_i . out_i),
//   dq_i = scale sum_j ds_ij k_j,  dk_j = scale sum_i ds_ij q_i.
// out and lse are the forward's (dense). Gradients are dense [B, H, L, Dh]; padded keys
// get 0.
//
// Decode: q, k_new, v_new [B, H, 1, Dh] (strides), k_cache, v_cache [B, H, Lmax, Dh]
// (strides), lengths [B] int64 (dense). Writes k_new, v_new at cache position lengths[b],
// then attends q over positions 0..lengths[b]; out is dense [B, H, 1, Dh]. A row with
// lengths[b] outside [0, Lmax) writes nothing and gets NaN.
#pragma once

#include "hepgen/core.h"

namespace hepgen {

// CPU (OpenMP over batch x heads). dtypes: f32, f64.
HEPGEN_API Status masked_attention_forward(DType dtype, const void* q, const int64_t q_strides[4],
                                           const void* k, const int64_t k_strides[4], const void* v,
                                           const int64_t v_strides[4],
                                           const uint8_t* key_padding_mask,
                                           const int64_t mask_strides[2], int64_t batch,
                                           int64_t heads, int64_t length, int64_t head_dim,
                                           bool causal, double scale, void* out, void* lse);

HEPGEN_API Status masked_attention_backward(
    DType dtype, const void* grad_out, const void* q, const int64_t q_strides[4], const void* k,
    const int64_t k_strides[4], const void* v, const int64_t v_strides[4],
    const uint8_t* key_padding_mask, const int64_t mask_strides[2], const void* out,
    const void* lse, int64_t batch, int64_t heads, int64_t length, int64_t head_dim, bool causal,
    double scale, void* grad_q, void* grad_k, void* grad_v);

HEPGEN_API Status masked_attention_decode(DType dtype, const void* q, const int64_t q_strides[4],
                                          const void* k_new, const int64_t k_new_strides[4],
                                          const void* v_new, const int64_t v_new_strides[4],
                                          void* k_cache, const int64_t k_cache_strides[4],
                                          void* v_cache, const int64_t v_cache_strides[4],
                                          const int64_t* lengths, int64_t batch, int64_t heads,
                                          int64_t max_length, int64_t head_dim, double scale,
                                          void* out);

namespace cuda {

// CUDA, asynchronous on `stream` (a cudaStream_t). Device pointers. dtypes: f32, f64, f16,
// bf16 (half types accumulate in float). head_dim <= 128. Status::not_built without CUDA.
HEPGEN_API Status masked_attention_forward(DType dtype, const void* q, const int64_t q_strides[4],
                                           const void* k, const int64_t k_strides[4], const void* v,
                                           const int64_t v_strides[4],
                                           const uint8_t* key_padding_mask,
                                           const int64_t mask_strides[2], int64_t batch,
                                           int64_t heads, int64_t length, int64_t head_dim,
                                           bool causal, double scale, void* out, void* lse,
                                           void* stream);

HEPGEN_API Status masked_attention_backward(
    DType dtype, const void* grad_out, const void* q, const int64_t q_strides[4], const void* k,
    const int64_t k_strides[4], const void* v, const int64_t v_strides[4],
    const uint8_t* key_padding_mask, const int64_t mask_strides[2], const void* out,
    const void* lse, int64_t batch, int64_t heads, int64_t length, int64_t head_dim, bool causal,
    double scale, void* grad_q, void* grad_k, void* grad_v, void* stream);

HEPGEN_API Status masked_attention_decode(DType dtype, const void* q, const int64_t q_strides[4],
                                          const void* k_new, const int64_t k_new_strides[4],
                                          const void* v_new, const int64_t v_new_strides[4],
                                          void* k_cache, const int64_t k_cache_strides[4],
                                          void* v_cache, const int64_t v_cache_strides[4],
                                          const int64_t* lengths, int64_t batch, int64_t heads,
                                          int64_t max_length, int64_t head_dim, double scale,
                                          void* out, void* stream);

}  // namespace cuda
}  // namespace hepgen
