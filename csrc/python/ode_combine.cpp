// hepgen._C binding of the fused ODE stage/update combination (see hepgen/ode_combine.h).
#include <vector>

#include "bindings.h"
#include "hepgen/ode_combine.h"

namespace hepgen_python {

void bind_ode_combine(py::module_& m) {
  using U = std::uintptr_t;
  auto call = [](bool on_cuda, int dt, U y, double y_coeff, const std::vector<U>& k,
                 const std::vector<double>& coeffs, U h, U mask, int64_t S, int64_t R, int64_t F, U out,
                 U stream) {
    if (k.size() != coeffs.size()) throw std::invalid_argument("ode_combine: one coefficient per term");
    if (k.size() > static_cast<std::size_t>(hepgen::kOdeMaxTerms))
      throw std::invalid_argument("ode_combine: at most " + std::to_string(hepgen::kOdeMaxTerms) + " terms");
    std::vector<const void*> kp(k.size());
    for (std::size_t i = 0; i < k.size(); ++i) kp[i] = cptr(k[i]);
    const int n = static_cast<int>(k.size());
    py::gil_scoped_release release;
    if (on_cuda)
      check(hepgen::cuda::ode_combine(to_dtype(dt), cptr(y), y_coeff, kp.data(), coeffs.data(), n, cptr(h),
                                      cptr(mask), S, R, F, mptr(out), mptr(stream)),
            "ode_combine (cuda)");
    else
      check(hepgen::ode_combine(to_dtype(dt), cptr(y), y_coeff, kp.data(), coeffs.data(), n, cptr(h), cptr(mask), S,
                                R, F, mptr(out)),
            "ode_combine (cpu)");
  };
  m.def("ode_combine", [call](int dt, U y, double yc, std::vector<U> k, std::vector<double> a, U h, U mask, int64_t S,
                              int64_t R, int64_t F, U out) { call(false, dt, y, yc, k, a, h, mask, S, R, F, out, 0); });
  m.def("cuda_ode_combine", [call](int dt, U y, double yc, std::vector<U> k, std::vector<double> a, U h, U mask,
                                   int64_t S, int64_t R, int64_t F, U out,
                                   U stream) { call(true, dt, y, yc, k, a, h, mask, S, R, F, out, stream); });
}

}  // namespace hepgen_python
