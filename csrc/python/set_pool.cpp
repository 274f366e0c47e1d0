// hepgen._C bindings of set_pool (see hepgen/set_pool.h). Tensors are any DLPack objects.
#include "hepgen/set_pool.h"
#include "bindings.h"

namespace hepgen_python {

void bind_set_pool(py::module_& m) {
  using H = py::handle;
  m.def("set_pool_forward", [](H x, H mask, double scale, H out) {
    const TensorArg a(x, "x"), b(mask, "mask"), c(out, "out", true);
    run("set_pool_forward (cpu)", [&] { return hepgen::set_pool_forward(a.view(), b.view(), scale, c.view()); });
  });
  m.def("set_pool_backward", [](H grad_out, H mask, double scale, H grad_x) {
    const TensorArg a(grad_out, "grad_out"), b(mask, "mask"), c(grad_x, "grad_x", true);
    run("set_pool_backward (cpu)", [&] { return hepgen::set_pool_backward(a.view(), b.view(), scale, c.view()); });
  });
  m.def("cuda_set_pool_forward", [](H x, H mask, double scale, H out, std::uintptr_t stream) {
    const TensorArg a(x, "x", false, stream), b(mask, "mask", false, stream), c(out, "out", true, stream);
    run("set_pool_forward (cuda)",
        [&] { return hepgen::cuda::set_pool_forward(a.view(), b.view(), scale, c.view(), stream_ptr(stream)); });
  });
  m.def("cuda_set_pool_backward", [](H grad_out, H mask, double scale, H grad_x, std::uintptr_t stream) {
    const TensorArg a(grad_out, "grad_out", false, stream), b(mask, "mask", false, stream),
        c(grad_x, "grad_x", true, stream);
    run("set_pool_backward (cuda)",
        [&] { return hepgen::cuda::set_pool_backward(a.view(), b.view(), scale, c.view(), stream_ptr(stream)); });
  });
}

}  // namespace hepgen_python
