// Helpers shared by the per-op binding files of hepgen._C.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "hepgen/core.h"
#include "tensor_arg.h"

namespace hepgen_python {

namespace py = pybind11;

// Runs a core entry point without the GIL and turns a non-ok Status into a Python error
// carrying the core's message: ValueError for a bad argument, TypeError for a dtype the
// backend lacks, RuntimeError otherwise (CUDA errors, a backend not built).
template <typename F> void run(const char* what, F&& call) {
  hepgen::Status status;
  {
    py::gil_scoped_release release;
    status = call();
  }
  if (status == hepgen::Status::ok) return;
  const std::string msg = std::string(what) + ": " + hepgen::last_error();  // CUDA errors included
  if (status == hepgen::Status::invalid_argument) throw py::value_error(msg);
  if (status == hepgen::Status::unsupported_dtype) throw py::type_error(msg);
  throw std::runtime_error(msg);
}

inline void* stream_ptr(std::uintptr_t s) { return reinterpret_cast<void*>(s); }

// One function per op file, called from module.cpp.
void bind_set_pool(py::module_& m);
void bind_epic_local(py::module_& m);
void bind_ode_combine(py::module_& m);
void bind_rq_spline(py::module_& m);
void bind_masked_attention(py::module_& m);

}  // namespace hepgen_python
