// hepgen._C bindings of the fused EPiC local update (see hepgen/epic_local.h).
#include "bindings.h"
#include "hepgen/epic_local.h"

namespace hepgen_python {
namespace {
const int64_t* iptr(std::uintptr_t p) { return reinterpret_cast<const int64_t*>(p); }
}  // namespace

void bind_epic_local(py::module_& m) {
  using U = std::uintptr_t;
  const auto nogil = py::call_guard<py::gil_scoped_release>();
  m.def("epic_bias_act", [](int dt, U z, U bias, U off, int64_t B, int64_t F, double slope) {
    check(hepgen::epic_bias_act(to_dtype(dt), mptr(z), cptr(bias), iptr(off), B, F, slope), "epic_bias_act (cpu)");
  }, nogil);
  m.def("epic_residual_pool", [](int dt, U z2, U x, U bias2, U mask, Strides2 ms, U off, int64_t B, int64_t N,
                                 int64_t H, double slope, double scale, U y, U pooled) {
    check(hepgen::epic_residual_pool(to_dtype(dt), cptr(z2), cptr(x), cptr(bias2), cptr(mask), ms.data(), iptr(off),
                                     B, N, H, slope, scale, mptr(y), mptr(pooled)),
          "epic_residual_pool (cpu)");
  }, nogil);
  m.def("epic_output_grad", [](int dt, U gy, U gp, U y, U mask, Strides2 ms, U off, int64_t B, int64_t N, int64_t H,
                               double slope, double scale, U dz2, U gb2) {
    check(hepgen::epic_output_grad(to_dtype(dt), cptr(gy), cptr(gp), cptr(y), cptr(mask), ms.data(), iptr(off), B,
                                   N, H, slope, scale, mptr(dz2), mptr(gb2)),
          "epic_output_grad (cpu)");
  }, nogil);
  m.def("epic_act_grad", [](int dt, U dh, U h, U off, int64_t B, int64_t F, double slope, U gb1) {
    check(hepgen::epic_act_grad(to_dtype(dt), mptr(dh), cptr(h), iptr(off), B, F, slope, mptr(gb1)), "epic_act_grad (cpu)");
  }, nogil);
  m.def("epic_unpack", [](int dt, U packed, U mask, Strides2 ms, U off, int64_t B, int64_t N, int64_t F, U padded) {
    check(hepgen::epic_unpack(to_dtype(dt), cptr(packed), cptr(mask), ms.data(), iptr(off), B, N, F, mptr(padded)),
          "epic_unpack (cpu)");
  }, nogil);
  m.def("cuda_epic_local_forward", [](int dt, U x, Strides3 xs, U mask, Strides2 ms, U w1t, U b1, U w2t, U b2,
                                      int64_t B, int64_t N, int64_t H, int64_t H1, double slope, double scale, U y,
                                      U pooled, U stream) {
    check(hepgen::cuda::epic_local_forward(to_dtype(dt), cptr(x), xs.data(), cptr(mask), ms.data(), cptr(w1t),
                                           cptr(b1), cptr(w2t), cptr(b2), B, N, H, H1, slope, scale, mptr(y),
                                           mptr(pooled), mptr(stream)),
          "epic_local_forward (cuda)");
  }, nogil);
  m.def("cuda_epic_local_backward", [](int dt, U gy, U gp, U x, Strides3 xs, U y, U mask, Strides2 ms, U w1, U w1t,
                                       U b1, U w2, int64_t B, int64_t N, int64_t H, int64_t H1, double slope,
                                       double scale, U dx, U dz1, U h, U dz2, U gb1, U gb2, U stream) {
    check(hepgen::cuda::epic_local_backward(to_dtype(dt), cptr(gy), cptr(gp), cptr(x), xs.data(), cptr(y), cptr(mask),
                                            ms.data(), cptr(w1), cptr(w1t), cptr(b1), cptr(w2), B, N, H, H1, slope,
                                            scale, mptr(dx), mptr(dz1), mptr(h), mptr(dz2), mptr(gb1), mptr(gb2),
                                            mptr(stream)),
          "epic_local_backward (cuda)");
  }, nogil);
}

}  // namespace hepgen_python
