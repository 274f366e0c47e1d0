// hepgen core: types shared by every op of the torch-free C++ API.
//
// Every op takes plain pointers, sizes and strides (in elements). The caller owns all
// memory; outputs are dense row-major. Functions return a Status instead of throwing, so
// the library can be called from any C++ code (and from C through a thin shim).
#pragma once

#include <cstdint>

#if defined(_WIN32)
#define HEPGEN_API __declspec(dllexport)
#else
#define HEPGEN_API __attribute__((visibility("default")))
#endif

namespace hepgen {

enum class DType : int { f32 = 0, f64 = 1, f16 = 2, bf16 = 3 };

enum class Status : int {
  ok = 0,
  invalid_argument = 1,   // negative size, null pointer with a non-empty size, ...
  unsupported_dtype = 2,  // this backend has no kernel for the dtype
  not_built = 3,          // the library was built without this backend (e.g. CUDA)
  cuda_error = 4,         // a CUDA runtime call failed; see last_cuda_error()
};

HEPGEN_API const char* status_string(Status status);

struct BuildInfo {
  const char* version;
  bool openmp;             // CPU kernels are parallelised with OpenMP
  int openmp_max_threads;  // omp_get_max_threads() now (1 without OpenMP)
  bool cuda;               // CUDA kernels were compiled in
  const char* cuda_archs;  // e.g. "80,90"; "" without CUDA
  const char* compiler;
};

HEPGEN_API BuildInfo build_info();

// Number of CUDA devices the driver reports; 0 when CUDA was not built, or there is no
// driver or no device. Never fails.
HEPGEN_API int cuda_device_count();

// Message of the last CUDA error seen by this thread ("" if none).
HEPGEN_API const char* last_cuda_error();

}  // namespace hepgen
