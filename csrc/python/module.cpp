// hepgen._C: the thin Python face of the torch-free core.
//
// Python (hepgen/ops) validates tensors and passes raw data pointers, sizes, strides and,
// for CUDA, the current stream as integers. This module checks what it can see (sizes,
// stride counts, dtype codes), releases the GIL, calls the core and turns a non-ok Status
// into a RuntimeError.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "hepgen/core.h"
#include "hepgen/set_pool.h"

namespace py = pybind11;

namespace {

using hepgen::DType;
using hepgen::Status;

DType to_dtype(int code) {
  if (code < 0 || code > 3) throw std::invalid_argument("dtype code must be 0..3, got " + std::to_string(code));
  return static_cast<DType>(code);
}

void check(Status status, const char* what) {
  if (status == Status::ok) return;
  std::string msg = std::string(what) + ": " + hepgen::status_string(status);
  if (status == Status::cuda_error) msg += std::string(" (") + hepgen::last_cuda_error() + ")";
  throw std::runtime_error(msg);
}

const void* cptr(std::uintptr_t p) { return reinterpret_cast<const void*>(p); }
void* mptr(std::uintptr_t p) { return reinterpret_cast<void*>(p); }

py::dict build_info() {
  const hepgen::BuildInfo info = hepgen::build_info();
  py::dict d;
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
  m.doc() = "hepgen compiled core (torch-free): raw-pointer entry points used by hepgen.ops";
  m.def("build_info", &build_info, "What this build of the core contains.");
  m.def("cuda_device_count", &hepgen::cuda_device_count, py::call_guard<py::gil_scoped_release>(),
        "CUDA devices visible to the core (0 without CUDA, driver or device).");

  using Strides3 = std::array<int64_t, 3>;
  using Strides2 = std::array<int64_t, 2>;

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
