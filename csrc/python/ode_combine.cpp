// hepgen._C binding of the fused ODE stage/update combination (see hepgen/ode_combine.h).
#include <string>
#include <vector>

#include "bindings.h"
#include "hepgen/ode_combine.h"

namespace hepgen_python {

void bind_ode_combine(py::module_& m) {
  using H = py::handle;
  // (y [S, R, F], y_coeff, ks (sequence of [S, R, F]), coeffs, h [S], mask [S, R] or None, out[, stream])
  const auto call = [](bool on_cuda, H y, double y_coeff, py::sequence ks, const std::vector<double>& coeffs, H h,
                       H mask, H out, std::uintptr_t stream) {
    const std::size_t n = ks.size();
    if (n != coeffs.size())
      throw py::value_error("ode_combine: coeffs must have one entry per term in ks (" + std::to_string(n) + "), got " +
                            std::to_string(coeffs.size()));
    if (n > static_cast<std::size_t>(hepgen::kOdeMaxTerms))
      throw py::value_error("ode_combine: ks may hold at most " + std::to_string(hepgen::kOdeMaxTerms) +
                            " terms, got " + std::to_string(n));
    const TensorArg a(y, "y", false, stream), b(h, "h", false, stream), o(out, "out", true, stream);
    const OptionalTensorArg mk(mask, "mask", stream);
    TensorArg terms[hepgen::kOdeMaxTerms];
    hepgen::TensorView views[hepgen::kOdeMaxTerms];
    for (std::size_t i = 0; i < n; ++i) {
      const std::string name = "ks[" + std::to_string(i) + "]";
      terms[i] = TensorArg(ks[i], name.c_str(), false, stream);
      views[i] = terms[i].view();
    }
    const int K = static_cast<int>(n);
    if (on_cuda)
      run("ode_combine (cuda)", [&] {
        return hepgen::cuda::ode_combine(a.view(), y_coeff, views, coeffs.data(), K, b.view(), mk.view(), o.view(),
                                         stream_ptr(stream));
      });
    else
      run("ode_combine (cpu)", [&] {
        return hepgen::ode_combine(a.view(), y_coeff, views, coeffs.data(), K, b.view(), mk.view(), o.view());
      });
  };
  m.def("ode_combine", [call](H y, double yc, py::sequence ks, std::vector<double> a, H h, H mask, H out) {
    call(false, y, yc, ks, a, h, mask, out, 0);
  });
  m.def("cuda_ode_combine", [call](H y, double yc, py::sequence ks, std::vector<double> a, H h, H mask, H out,
                                   std::uintptr_t stream) { call(true, y, yc, ks, a, h, mask, out, stream); });
}

}  // namespace hepgen_python
