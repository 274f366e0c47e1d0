// hepgen._C bindings of masked_attention (see hepgen/masked_attention.h).
#include "bindings.h"
#include "hepgen/masked_attention.h"

namespace hepgen_python {
namespace {

using Strides4 = std::array<int64_t, 4>;

const uint8_t* mask_ptr(std::uintptr_t p) { return reinterpret_cast<const uint8_t*>(p); }
const int64_t* lengths_ptr(std::uintptr_t p) { return reinterpret_cast<const int64_t*>(p); }

}  // namespace

void bind_masked_attention(py::module_& m) {
  // Forward: (dtype, q, q_strides, k, k_strides, v, v_strides, mask (0 = none), mask_strides,
  //           B, H, L, Dh, causal, scale, out, lse[, stream]).
  m.def(
      "masked_attention_forward",
      [](int dtype, std::uintptr_t q, Strides4 qs, std::uintptr_t k, Strides4 ks, std::uintptr_t v,
         Strides4 vs, std::uintptr_t mask, Strides2 ms, int64_t B, int64_t H, int64_t L, int64_t D,
         bool causal, double scale, std::uintptr_t out, std::uintptr_t lse) {
        check(hepgen::masked_attention_forward(to_dtype(dtype), cptr(q), qs.data(), cptr(k), ks.data(),
                                               cptr(v), vs.data(), mask_ptr(mask), ms.data(), B, H, L,
                                               D, causal, scale, mptr(out), mptr(lse)),
              "masked_attention_forward (cpu)");
      },
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "cuda_masked_attention_forward",
      [](int dtype, std::uintptr_t q, Strides4 qs, std::uintptr_t k, Strides4 ks, std::uintptr_t v,
         Strides4 vs, std::uintptr_t mask, Strides2 ms, int64_t B, int64_t H, int64_t L, int64_t D,
         bool causal, double scale, std::uintptr_t out, std::uintptr_t lse, std::uintptr_t stream) {
        check(hepgen::cuda::masked_attention_forward(to_dtype(dtype), cptr(q), qs.data(), cptr(k),
                                                     ks.data(), cptr(v), vs.data(), mask_ptr(mask),
                                                     ms.data(), B, H, L, D, causal, scale, mptr(out),
                                                     mptr(lse), mptr(stream)),
              "masked_attention_forward (cuda)");
      },
      py::call_guard<py::gil_scoped_release>());
  // Backward: (dtype, grad_out, q, qs, k, ks, v, vs, mask, ms, out, lse, B, H, L, Dh, causal,
  //            scale, grad_q, grad_k, grad_v[, stream]).
  m.def(
      "masked_attention_backward",
      [](int dtype, std::uintptr_t g, std::uintptr_t q, Strides4 qs, std::uintptr_t k, Strides4 ks,
         std::uintptr_t v, Strides4 vs, std::uintptr_t mask, Strides2 ms, std::uintptr_t out,
         std::uintptr_t lse, int64_t B, int64_t H, int64_t L, int64_t D, bool causal, double scale,
         std::uintptr_t gq, std::uintptr_t gk, std::uintptr_t gv) {
        check(hepgen::masked_attention_backward(to_dtype(dtype), cptr(g), cptr(q), qs.data(), cptr(k),
                                                ks.data(), cptr(v), vs.data(), mask_ptr(mask),
                                                ms.data(), cptr(out), cptr(lse), B, H, L, D, causal,
                                                scale, mptr(gq), mptr(gk), mptr(gv)),
              "masked_attention_backward (cpu)");
      },
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "cuda_masked_attention_backward",
      [](int dtype, std::uintptr_t g, std::uintptr_t q, Strides4 qs, std::uintptr_t k, Strides4 ks,
         std::uintptr_t v, Strides4 vs, std::uintptr_t mask, Strides2 ms, std::uintptr_t out,
         std::uintptr_t lse, int64_t B, int64_t H, int64_t L, int64_t D, bool causal, double scale,
         std::uintptr_t gq, std::uintptr_t gk, std::uintptr_t gv, std::uintptr_t stream) {
        check(hepgen::cuda::masked_attention_backward(
                  to_dtype(dtype), cptr(g), cptr(q), qs.data(), cptr(k), ks.data(), cptr(v),
                  vs.data(), mask_ptr(mask), ms.data(), cptr(out), cptr(lse), B, H, L, D, causal,
                  scale, mptr(gq), mptr(gk), mptr(gv), mptr(stream)),
              "masked_attention_backward (cuda)");
      },
      py::call_guard<py::gil_scoped_release>());
  // Decode: (dtype, q, qs, k_new, kns, v_new, vns, k_cache, kcs, v_cache, vcs, lengths (int64),
  //          B, H, Lmax, Dh, scale, out[, stream]).
  m.def(
      "masked_attention_decode",
      [](int dtype, std::uintptr_t q, Strides4 qs, std::uintptr_t kn, Strides4 kns, std::uintptr_t vn,
         Strides4 vns, std::uintptr_t kc, Strides4 kcs, std::uintptr_t vc, Strides4 vcs,
         std::uintptr_t lengths, int64_t B, int64_t H, int64_t Lmax, int64_t D, double scale,
         std::uintptr_t out) {
        check(hepgen::masked_attention_decode(to_dtype(dtype), cptr(q), qs.data(), cptr(kn), kns.data(),
                                              cptr(vn), vns.data(), mptr(kc), kcs.data(), mptr(vc),
                                              vcs.data(), lengths_ptr(lengths), B, H, Lmax, D, scale,
                                              mptr(out)),
              "masked_attention_decode (cpu)");
      },
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "cuda_masked_attention_decode",
      [](int dtype, std::uintptr_t q, Strides4 qs, std::uintptr_t kn, Strides4 kns, std::uintptr_t vn,
         Strides4 vns, std::uintptr_t kc, Strides4 kcs, std::uintptr_t vc, Strides4 vcs,
         std::uintptr_t lengths, int64_t B, int64_t H, int64_t Lmax, int64_t D, double scale,
         std::uintptr_t out, std::uintptr_t stream) {
        check(hepgen::cuda::masked_attention_decode(to_dtype(dtype), cptr(q), qs.data(), cptr(kn),
                                                    kns.data(), cptr(vn), vns.data(), mptr(kc),
                                                    kcs.data(), mptr(vc), vcs.data(),
                                                    lengths_ptr(lengths), B, H, Lmax, D, scale,
                                                    mptr(out), mptr(stream)),
              "masked_attention_decode (cuda)");
      },
      py::call_guard<py::gil_scoped_release>());
}

}  // namespace hepgen_python
