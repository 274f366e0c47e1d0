// OpenMP helpers shared by the CPU kernels. Small problems run on one thread: waking a
// thread team costs a few microseconds, more than pooling a few thousand numbers.
#pragma once

#include <cstdint>

namespace hepgen {
// Elements of work below which a kernel stays single-threaded.
constexpr int64_t kParallelGrain = 1 << 15;
}  // namespace hepgen

#ifdef HEPGEN_WITH_OPENMP
#define HEPGEN_PRAGMA(x) _Pragma(#x)
#define HEPGEN_PARALLEL_FOR(work) \
  HEPGEN_PRAGMA(omp parallel for schedule(static) if ((work) >= ::hepgen::kParallelGrain))
#define HEPGEN_PARALLEL_REGION(work) HEPGEN_PRAGMA(omp parallel if ((work) >= ::hepgen::kParallelGrain))
#define HEPGEN_FOR HEPGEN_PRAGMA(omp for schedule(static))
#else
#define HEPGEN_PARALLEL_FOR(work)
#define HEPGEN_PARALLEL_REGION(work)
#define HEPGEN_FOR
#endif
