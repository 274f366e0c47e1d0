// The building blocks of the per-op argument checks (see op_args.h).
#include "op_args.h"

namespace hepgen {
namespace args {

int64_t product(int64_t a, int64_t b) {
  int64_t p;
  return __builtin_mul_overflow(a, b, &p) ? -1 : p;
}

Status data(const Backend& be, const char* name, const TensorView& t, int rank) {
  HEPGEN_TRY(check_view(name, t, rank));
  HEPGEN_TRY(check_device(name, t, be.kind, be.index));
  return check_float_dtype(name, t, be.half_types);
}

Status like(const Backend& be, const char* name, const TensorView& t, int rank, const char* ref_name,
            const TensorView& ref) {
  HEPGEN_TRY(check_view(name, t, rank));
  HEPGEN_TRY(check_device(name, t, be.kind, be.index));
  return check_same_dtype(name, t, ref_name, ref);
}

Status output(const Backend& be, const char* name, const TensorView& t, std::initializer_list<int64_t> shape,
              const char* what, const char* ref_name, const TensorView& ref, std::initializer_list<Named> inputs) {
  HEPGEN_TRY(like(be, name, t, static_cast<int>(shape.size()), ref_name, ref));
  HEPGEN_TRY(check_shape(name, t, shape, what));
  HEPGEN_TRY(check_contiguous(name, t));  // contiguous: no self-overlap either
  for (const Named& in : inputs)
    if (in.view) HEPGEN_TRY(check_no_overlap(name, t, in.name, *in.view));
  return Status::ok;
}

}  // namespace args
}  // namespace hepgen
