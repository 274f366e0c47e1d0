// hepgen._C: the thin Python face of the torch-free core.
//
// Python (hepgen/ops) passes tensors (any DLPack object: tensor_arg.h) and, for CUDA, the
// current stream as an integer. The bindings (one file per op) turn each tensor into a
// hepgen::TensorView, release the GIL, call the core (which validates every view) and turn a
// non-ok Status into a ValueError/TypeError/RuntimeError carrying the core's message.
#include "bindings.h"

namespace {

pybind11::dict build_info() {
  const hepgen::BuildInfo info = hepgen::build_info();
  pybind11::dict d;
  d["version"] = info.version;
  d["openmp"] = info.openmp;
  d["openmp_max_threads"] = info.openmp_max_threads;
  d["cuda"] = info.cuda;
  d["cuda_archs"] = std::string(info.cuda_archs);
  d["compiler"] = info.compiler;
  return d;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  namespace py = pybind11;
  m.doc() = "hepgen compiled core (torch-free): tensor-view entry points used by hepgen.ops";
  m.def("build_info", &build_info, "What this build of the core contains.");
  m.def("cuda_device_count", &hepgen::cuda_device_count, py::call_guard<py::gil_scoped_release>(),
        "CUDA devices visible to the core (0 without CUDA, driver or device).");

  hepgen_python::bind_set_pool(m);
  hepgen_python::bind_epic_local(m);
  hepgen_python::bind_ode_combine(m);
  hepgen_python::bind_rq_spline(m);
  hepgen_python::bind_masked_attention(m);
}
