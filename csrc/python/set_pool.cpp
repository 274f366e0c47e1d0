// hepgen._C bindings of set_pool (see hepgen/set_pool.h).
#include "bindings.h"
#include "hepgen/set_pool.h"

namespace hepgen_python {

void bind_set_pool(py::module_& m) {
  m.def(
      "set_pool_forward",
      [](int dtype, std::uintptr_t x, Strides3 xs, std::uintptr_t mask, Strides2 ms, int64_t B,
         int64_t N, int64_t D, double scale, std::uintptr_t out) {
        check(hepgen::set_pool_forward(to_dtype(dtype), cptr(x), xs.data(), cptr(mask), ms.data(),
                                       B, N, D, scale, mptr(out)),
              "set_pool_forward (cpu)");
      },
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "set_pool_backward",
      [](int dtype, std::uintptr_t grad_out, std::uintptr_t mask, Strides2 ms, int64_t B,
         int64_t N, int64_t D, double scale, std::uintptr_t grad_x) {
        check(hepgen::set_pool_backward(to_dtype(dtype), cptr(grad_out), cptr(mask), ms.data(), B,
                                        N, D, scale, mptr(grad_x)),
              "set_pool_backward (cpu)");
      },
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "cuda_set_pool_forward",
      [](int dtype, std::uintptr_t x, Strides3 xs, std::uintptr_t mask, Strides2 ms, int64_t B,
         int64_t N, int64_t D, double scale, std::uintptr_t out, std::uintptr_t stream) {
        check(hepgen::cuda::set_pool_forward(to_dtype(dtype), cptr(x), xs.data(), cptr(mask),
                                             ms.data(), B, N, D, scale, mptr(out), mptr(stream)),
              "set_pool_forward (cuda)");
      },
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "cuda_set_pool_backward",
      [](int dtype, std::uintptr_t grad_out, std::uintptr_t mask, Strides2 ms, int64_t B,
         int64_t N, int64_t D, double scale, std::uintptr_t grad_x, std::uintptr_t stream) {
        check(hepgen::cuda::set_pool_backward(to_dtype(dtype), cptr(grad_out), cptr(mask),
                                              ms.data(), B, N, D, scale, mptr(grad_x),
                                              mptr(stream)),
              "set_pool_backward (cuda)");
      },
      py::call_guard<py::gil_scoped_release>());
}

}  // namespace hepgen_python
