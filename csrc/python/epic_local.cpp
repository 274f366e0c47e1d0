// hepgen._C bindings of the fused EPiC local update (see hepgen/epic_local.h).
#include "hepgen/epic_local.h"
#include "bindings.h"

namespace hepgen_python {

void bind_epic_local(py::module_& m) {
  using H = py::handle;
  using hepgen::TensorView;
  m.def("epic_bias_act", [](H z, H bias, H off, double slope) {
    const TensorArg a(z, "z", true), b(bias, "bias"), c(off, "offsets");
    run("epic_bias_act (cpu)", [&] { return hepgen::epic_bias_act(a.view(), b.view(), c.view(), slope); });
  });
  m.def("epic_residual_pool", [](H z2, H x, H bias2, H mask, H off, double slope, double scale, H y, H pooled) {
    const TensorArg a(z2, "z2"), b(x, "x"), c(bias2, "bias2"), d(mask, "mask"), e(off, "offsets"), f(y, "y", true),
        g(pooled, "pooled", true);
    run("epic_residual_pool (cpu)", [&] {
      return hepgen::epic_residual_pool(a.view(), b.view(), c.view(), d.view(), e.view(), slope, scale, f.view(),
                                        g.view());
    });
  });
  m.def("epic_output_grad", [](H gy, H gp, H y, H mask, H off, double slope, double scale, H dz2, H gb2) {
    const TensorArg a(gy, "grad_y"), b(gp, "grad_pooled"), c(y, "y"), d(mask, "mask"), e(off, "offsets"),
        f(dz2, "dz2", true), g(gb2, "grad_bias2", true);
    run("epic_output_grad (cpu)", [&] {
      return hepgen::epic_output_grad(a.view(), b.view(), c.view(), d.view(), e.view(), slope, scale, f.view(),
                                      g.view());
    });
  });
  m.def("epic_act_grad", [](H dh, H h, H off, double slope, H gb1) {
    const TensorArg a(dh, "dh", true), b(h, "h"), c(off, "offsets"), d(gb1, "grad_bias1", true);
    run("epic_act_grad (cpu)", [&] { return hepgen::epic_act_grad(a.view(), b.view(), c.view(), slope, d.view()); });
  });
  m.def("epic_unpack", [](H packed, H mask, H off, H padded) {
    const TensorArg a(packed, "packed"), b(mask, "mask"), c(off, "offsets"), d(padded, "padded", true);
    run("epic_unpack (cpu)", [&] { return hepgen::epic_unpack(a.view(), b.view(), c.view(), d.view()); });
  });
  m.def("cuda_epic_local_forward",
        [](H x, H mask, H w1t, H b1, H w2t, H b2, double slope, double scale, H y, H pooled, std::uintptr_t stream) {
          const TensorArg a(x, "x", false, stream), b(mask, "mask", false, stream), c(w1t, "w1t", false, stream),
              d(b1, "bias1", false, stream), e(w2t, "w2t", false, stream), f(b2, "bias2", false, stream),
              g(y, "y", true, stream), h(pooled, "pooled", true, stream);
          run("epic_local_forward (cuda)", [&] {
            return hepgen::cuda::epic_local_forward(a.view(), b.view(), c.view(), d.view(), e.view(), f.view(), slope,
                                                    scale, g.view(), h.view(), stream_ptr(stream));
          });
        });
  m.def("cuda_epic_local_backward", [](H gy, H gp, H x, H y, H mask, H w1, H w1t, H b1, H w2, double slope,
                                       double scale, H dx, H dz1, H h, H dz2, H gb1, H gb2, std::uintptr_t stream) {
    const TensorArg a(gy, "grad_y", false, stream), b(gp, "grad_pooled", false, stream), c(x, "x", false, stream),
        d(y, "y", false, stream), e(mask, "mask", false, stream), f(w1, "w1", false, stream),
        g(w1t, "w1t", false, stream), i(b1, "bias1", false, stream), j(w2, "w2", false, stream),
        o1(dx, "dx", true, stream), o2(dz1, "dz1", true, stream), o3(h, "h", true, stream),
        o4(dz2, "dz2", true, stream), o5(gb1, "grad_bias1", true, stream), o6(gb2, "grad_bias2", true, stream);
    run("epic_local_backward (cuda)", [&] {
      return hepgen::cuda::epic_local_backward(a.view(), b.view(), c.view(), d.view(), e.view(), f.view(), g.view(),
                                               i.view(), j.view(), slope, scale, o1.view(), o2.view(), o3.view(),
                                               o4.view(), o5.view(), o6.view(), stream_ptr(stream));
    });
  });
}

}  // namespace hepgen_python
