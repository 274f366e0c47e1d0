// What this build of the core contains: reported by `hepgen info` and to C++ users.
#include "hepgen/core.h"

#ifdef HEPGEN_WITH_OPENMP
#include <omp.h>
#endif

#ifndef HEPGEN_CUDA_ARCHS
#define HEPGEN_CUDA_ARCHS ""
#endif

namespace hepgen {

const char* status_string(Status status) {
  switch (status) {
    case Status::ok: return "ok";
    case Status::invalid_argument: return "invalid argument";
    case Status::unsupported_dtype: return "unsupported dtype for this backend";
    case Status::not_built: return "backend not built into this library";
    case Status::cuda_error: return "CUDA error";
  }
  return "unknown status";
}

BuildInfo build_info() {
  BuildInfo info{};
  info.version = HEPGEN_VERSION;
#ifdef HEPGEN_WITH_OPENMP
  info.openmp = true;
  info.openmp_max_threads = omp_get_max_threads();
#else
  info.openmp = false;
  info.openmp_max_threads = 1;
#endif
#ifdef HEPGEN_WITH_CUDA
  info.cuda = true;
#else
  info.cuda = false;
#endif
  info.cuda_archs = HEPGEN_CUDA_ARCHS;
#if defined(__clang__)
  info.compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  info.compiler = "gcc " __VERSION__;
#else
  info.compiler = "unknown";
#endif
  return info;
}

}  // namespace hepgen
