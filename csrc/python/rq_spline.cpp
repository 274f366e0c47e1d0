// hepgen._C bindings of rq_spline (see hepgen/rq_spline.h). Tensors are any DLPack objects.
#include "hepgen/rq_spline.h"
#include "bindings.h"

namespace hepgen_python {
namespace {

hepgen::RQSplineOptions options(bool inverse, double bound, double mw, double mh, double md) {
  hepgen::RQSplineOptions o;
  o.inverse = inverse;
  o.tail_bound = bound;
  o.min_bin_width = mw;
  o.min_bin_height = mh;
  o.min_derivative = md;
  return o;
}

}  // namespace

void bind_rq_spline(py::module_& m) {
  using H = py::handle;
  // (inputs, widths, heights, derivatives, inverse, tail_bound, min_bin_width, min_bin_height,
  //  min_derivative, outputs..., [stream])
  const auto forward = [](bool on_cuda, H x, H w, H h, H d, bool inverse, double bound, double mw, double mh, double md,
                          H out, H logdet, std::uintptr_t stream) {
    const TensorArg a(x, "inputs", false, stream), b(w, "widths", false, stream), c(h, "heights", false, stream),
        e(d, "derivatives", false, stream), o(out, "outputs", true, stream), l(logdet, "logabsdet", true, stream);
    const hepgen::RQSplineOptions opt = options(inverse, bound, mw, mh, md);
    if (on_cuda)
      run("rq_spline_forward (cuda)", [&] {
        return hepgen::cuda::rq_spline_forward(opt, a.view(), b.view(), c.view(), e.view(), o.view(), l.view(),
                                               stream_ptr(stream));
      });
    else
      run("rq_spline_forward (cpu)",
          [&] { return hepgen::rq_spline_forward(opt, a.view(), b.view(), c.view(), e.view(), o.view(), l.view()); });
  };
  const auto backward = [](bool on_cuda, H x, H w, H h, H d, bool inverse, double bound, double mw, double mh,
                           double md, H gy, H gl, H gx, H gw, H gh, H gd, std::uintptr_t stream) {
    const TensorArg a(x, "inputs", false, stream), b(w, "widths", false, stream), c(h, "heights", false, stream),
        e(d, "derivatives", false, stream), f(gy, "grad_outputs", false, stream),
        g(gl, "grad_logabsdet", false, stream), ox(gx, "grad_inputs", true, stream),
        ow(gw, "grad_widths", true, stream), oh(gh, "grad_heights", true, stream),
        od(gd, "grad_derivatives", true, stream);
    const hepgen::RQSplineOptions opt = options(inverse, bound, mw, mh, md);
    if (on_cuda)
      run("rq_spline_backward (cuda)", [&] {
        return hepgen::cuda::rq_spline_backward(opt, a.view(), b.view(), c.view(), e.view(), f.view(), g.view(),
                                                ox.view(), ow.view(), oh.view(), od.view(), stream_ptr(stream));
      });
    else
      run("rq_spline_backward (cpu)", [&] {
        return hepgen::rq_spline_backward(opt, a.view(), b.view(), c.view(), e.view(), f.view(), g.view(), ox.view(),
                                          ow.view(), oh.view(), od.view());
      });
  };
  m.def("rq_spline_forward",
        [forward](H x, H w, H h, H d, bool inv, double bound, double mw, double mh, double md, H out, H logdet) {
          forward(false, x, w, h, d, inv, bound, mw, mh, md, out, logdet, 0);
        });
  m.def("cuda_rq_spline_forward",
        [forward](H x, H w, H h, H d, bool inv, double bound, double mw, double mh, double md, H out, H logdet,
                  std::uintptr_t stream) { forward(true, x, w, h, d, inv, bound, mw, mh, md, out, logdet, stream); });
  m.def("rq_spline_backward",
        [backward](H x, H w, H h, H d, bool inv, double bound, double mw, double mh, double md, H gy, H gl, H gx, H gw,
                   H gh, H gd) { backward(false, x, w, h, d, inv, bound, mw, mh, md, gy, gl, gx, gw, gh, gd, 0); });
  m.def("cuda_rq_spline_backward", [backward](H x, H w, H h, H d, bool inv, double bound, double mw, double mh,
                                              double md, H gy, H gl, H gx, H gw, H gh, H gd, std::uintptr_t stream) {
    backward(true, x, w, h, d, inv, bound, mw, mh, md, gy, gl, gx, gw, gh, gd, stream);
  });
}

}  // namespace hepgen_python
