// hepgen._C bindings of rq_spline (see hepgen/rq_spline.h).
#include "bindings.h"
#include "hepgen/rq_spline.h"

namespace hepgen_python {
namespace {

hepgen::RQSplineOptions options(int64_t bins, bool inverse, double bound, double mw, double mh, double md) {
  hepgen::RQSplineOptions o;
  o.bins = bins;
  o.inverse = inverse;
  o.tail_bound = bound;
  o.min_bin_width = mw;
  o.min_bin_height = mh;
  o.min_derivative = md;
  return o;
}

}  // namespace

void bind_rq_spline(py::module_& m) {
  // Arguments: dtype, n, K, inputs, widths, widths row stride, heights, its stride,
  // derivatives, its stride, inverse, tail_bound, min_bin_width, min_bin_height,
  // min_derivative, then the outputs (and the stream for CUDA).
  m.def(
      "rq_spline_forward",
      [](int dtype, int64_t n, int64_t K, std::uintptr_t x, std::uintptr_t w, int64_t ws,
         std::uintptr_t h, int64_t hs, std::uintptr_t d, int64_t ds, bool inverse, double bound,
         double mw, double mh, double md, std::uintptr_t out, std::uintptr_t logdet) {
        check(hepgen::rq_spline_forward(to_dtype(dtype), n, options(K, inverse, bound, mw, mh, md),
                                        cptr(x), cptr(w), ws, cptr(h), hs, cptr(d), ds, mptr(out),
                                        mptr(logdet)),
              "rq_spline_forward (cpu)");
      },
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "rq_spline_backward",
      [](int dtype, int64_t n, int64_t K, std::uintptr_t x, std::uintptr_t w, int64_t ws,
         std::uintptr_t h, int64_t hs, std::uintptr_t d, int64_t ds, bool inverse, double bound,
         double mw, double mh, double md, std::uintptr_t g_out, std::uintptr_t g_ld,
         std::uintptr_t g_x, std::uintptr_t g_w, std::uintptr_t g_h, std::uintptr_t g_d) {
        check(hepgen::rq_spline_backward(to_dtype(dtype), n, options(K, inverse, bound, mw, mh, md),
                                         cptr(x), cptr(w), ws, cptr(h), hs, cptr(d), ds,
                                         cptr(g_out), cptr(g_ld), mptr(g_x), mptr(g_w), mptr(g_h),
                                         mptr(g_d)),
              "rq_spline_backward (cpu)");
      },
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "cuda_rq_spline_forward",
      [](int dtype, int64_t n, int64_t K, std::uintptr_t x, std::uintptr_t w, int64_t ws,
         std::uintptr_t h, int64_t hs, std::uintptr_t d, int64_t ds, bool inverse, double bound,
         double mw, double mh, double md, std::uintptr_t out, std::uintptr_t logdet,
         std::uintptr_t stream) {
        check(hepgen::cuda::rq_spline_forward(to_dtype(dtype), n,
                                              options(K, inverse, bound, mw, mh, md), cptr(x),
                                              cptr(w), ws, cptr(h), hs, cptr(d), ds, mptr(out),
                                              mptr(logdet), mptr(stream)),
              "rq_spline_forward (cuda)");
      },
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "cuda_rq_spline_backward",
      [](int dtype, int64_t n, int64_t K, std::uintptr_t x, std::uintptr_t w, int64_t ws,
         std::uintptr_t h, int64_t hs, std::uintptr_t d, int64_t ds, bool inverse, double bound,
         double mw, double mh, double md, std::uintptr_t g_out, std::uintptr_t g_ld,
         std::uintptr_t g_x, std::uintptr_t g_w, std::uintptr_t g_h, std::uintptr_t g_d,
         std::uintptr_t stream) {
        check(hepgen::cuda::rq_spline_backward(to_dtype(dtype), n,
                                               options(K, inverse, bound, mw, mh, md), cptr(x),
                                               cptr(w), ws, cptr(h), hs, cptr(d), ds, cptr(g_out),
                                               cptr(g_ld), mptr(g_x), mptr(g_w), mptr(g_h),
                                               mptr(g_d), mptr(stream)),
              "rq_spline_backward (cuda)");
      },
      py::call_guard<py::gil_scoped_release>());
}

}  // namespace hepgen_python
