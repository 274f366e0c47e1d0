// hepgen._C bindings of masked_attention (see hepgen/masked_attention.h).
#include "hepgen/masked_attention.h"
#include "bindings.h"

namespace hepgen_python {

void bind_masked_attention(py::module_& m) {
  using H = py::handle;
  using U = std::uintptr_t;
  // (q, k, v, key_padding_mask or None, causal, scale, out, lse[, stream])
  const auto forward = [](bool on_cuda, H q, H k, H v, H mask, bool causal, double scale, H out, H lse, U stream) {
    const TensorArg a(q, "q", false, stream), b(k, "k", false, stream), c(v, "v", false, stream),
        o(out, "out", true, stream), l(lse, "lse", true, stream);
    const OptionalTensorArg mk(mask, "key_padding_mask", stream);
    if (on_cuda)
      run("masked_attention_forward (cuda)", [&] {
        return hepgen::cuda::masked_attention_forward(a.view(), b.view(), c.view(), mk.view(), causal, scale, o.view(),
                                                      l.view(), stream_ptr(stream));
      });
    else
      run("masked_attention_forward (cpu)", [&] {
        return hepgen::masked_attention_forward(a.view(), b.view(), c.view(), mk.view(), causal, scale, o.view(),
                                                l.view());
      });
  };
  // (grad_out, q, k, v, key_padding_mask or None, out, lse, causal, scale, grad_q, grad_k, grad_v[, stream])
  const auto backward = [](bool on_cuda, H g, H q, H k, H v, H mask, H out, H lse, bool causal, double scale, H gq,
                           H gk, H gv, U stream) {
    const TensorArg a(g, "grad_out", false, stream), b(q, "q", false, stream), c(k, "k", false, stream),
        d(v, "v", false, stream), e(out, "out", false, stream), f(lse, "lse", false, stream),
        o1(gq, "grad_q", true, stream), o2(gk, "grad_k", true, stream), o3(gv, "grad_v", true, stream);
    const OptionalTensorArg mk(mask, "key_padding_mask", stream);
    if (on_cuda)
      run("masked_attention_backward (cuda)", [&] {
        return hepgen::cuda::masked_attention_backward(a.view(), b.view(), c.view(), d.view(), mk.view(), e.view(),
                                                       f.view(), causal, scale, o1.view(), o2.view(), o3.view(),
                                                       stream_ptr(stream));
      });
    else
      run("masked_attention_backward (cpu)", [&] {
        return hepgen::masked_attention_backward(a.view(), b.view(), c.view(), d.view(), mk.view(), e.view(), f.view(),
                                                 causal, scale, o1.view(), o2.view(), o3.view());
      });
  };
  // (q, k_new, v_new, k_cache, v_cache, lengths, scale, out[, stream])
  const auto decode = [](bool on_cuda, H q, H kn, H vn, H kc, H vc, H lengths, double scale, H out, U stream) {
    const TensorArg a(q, "q", false, stream), b(kn, "k_new", false, stream), c(vn, "v_new", false, stream),
        d(kc, "k_cache", true, stream), e(vc, "v_cache", true, stream), f(lengths, "lengths", false, stream),
        o(out, "out", true, stream);
    if (on_cuda)
      run("masked_attention_decode (cuda)", [&] {
        return hepgen::cuda::masked_attention_decode(a.view(), b.view(), c.view(), d.view(), e.view(), f.view(), scale,
                                                     o.view(), stream_ptr(stream));
      });
    else
      run("masked_attention_decode (cpu)", [&] {
        return hepgen::masked_attention_decode(a.view(), b.view(), c.view(), d.view(), e.view(), f.view(), scale,
                                               o.view());
      });
  };
  m.def("masked_attention_forward", [forward](H q, H k, H v, H mask, bool causal, double scale, H out, H lse) {
    forward(false, q, k, v, mask, causal, scale, out, lse, 0);
  });
  m.def("cuda_masked_attention_forward",
        [forward](H q, H k, H v, H mask, bool causal, double scale, H out, H lse, U stream) {
          forward(true, q, k, v, mask, causal, scale, out, lse, stream);
        });
  m.def("masked_attention_backward",
        [backward](H g, H q, H k, H v, H mask, H out, H lse, bool causal, double scale, H gq, H gk, H gv) {
          backward(false, g, q, k, v, mask, out, lse, causal, scale, gq, gk, gv, 0);
        });
  m.def("cuda_masked_attention_backward",
        [backward](H g, H q, H k, H v, H mask, H out, H lse, bool causal, double scale, H gq, H gk, H gv, U stream) {
          backward(true, g, q, k, v, mask, out, lse, causal, scale, gq, gk, gv, stream);
        });
  m.def("masked_attention_decode", [decode](H q, H kn, H vn, H kc, H vc, H lengths, double scale, H out) {
    decode(false, q, kn, vn, kc, vc, lengths, scale, out, 0);
  });
  m.def("cuda_masked_attention_decode",
        [decode](H q, H kn, H vn, H kc, H vc, H lengths, double scale, H out, U stream) {
          decode(true, q, kn, vn, kc, vc, lengths, scale, out, stream);
        });
}

}  // namespace hepgen_python
