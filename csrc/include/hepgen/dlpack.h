// Views of DLPack tensors: how hepgen._C (and any C++ caller holding a DLTensor from another
// framework) fills a hepgen::TensorView without linking that framework.
#pragma once

#include <dlpack/dlpack.h>

#include "hepgen/tensor_view.h"

namespace hepgen {

// *out = a view of t (data + byte_offset, DLPack's strides, or row-major when strides is null).
// invalid_argument (message in last_error()) for a dtype, device or rank the core does not
// take: float32/64/16, bfloat16, uint8, bool and int64 on cpu (also pinned cuda_host) or cuda,
// rank <= kMaxRank. `name` names the argument in the message. The view borrows t's memory.
HEPGEN_API Status from_dlpack(const DLTensor& t, const char* name, TensorView* out);

// The same for a versioned managed tensor; refuses a major version other than
// DLPACK_MAJOR_VERSION, and a read-only tensor when `writable`.
HEPGEN_API Status from_dlpack(const DLManagedTensorVersioned& t, const char* name, bool writable, TensorView* out);

}  // namespace hepgen
