// Helpers shared by the per-op binding files of hepgen._C.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "hepgen/core.h"

namespace hepgen_python {

namespace py = pybind11;

using Strides2 = std::array<int64_t, 2>;
using Strides3 = std::array<int64_t, 3>;

inline hepgen::DType to_dtype(int code) {
  if (code < 0 || code > 3) throw std::invalid_argument("dtype code must be 0..3, got " + std::to_string(code));
  return static_cast<hepgen::DType>(code);
}

// Turns a non-ok Status into a RuntimeError (pybind11 translates std::runtime_error).
inline void check(hepgen::Status status, const char* what) {
  if (status == hepgen::Status::ok) return;
  std::string msg = std::string(what) + ": " + hepgen::status_string(status);
  if (status == hepgen::Status::cuda_error) msg += std::string(" (") + hepgen::last_cuda_error() + ")";
  throw std::runtime_error(msg);
}

inline const void* cptr(std::uintptr_t p) { return reinterpret_cast<const void*>(p); }
inline void* mptr(std::uintptr_t p) { return reinterpret_cast<void*>(p); }

// One function per op file, called from module.cpp.
void bind_set_pool(py::module_& m);
void bind_epic_local(py::module_& m);
void bind_ode_combine(py::module_& m);
void bind_rq_spline(py::module_& m);
void bind_masked_attention(py::module_& m);

}  // namespace hepgen_python
