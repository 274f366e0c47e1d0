// DLTensor -> hepgen::TensorView (see hepgen/dlpack.h).
#include "hepgen/dlpack.h"

namespace hepgen {
namespace {

bool dtype_from(DLDataType t, DType* out) {
  if (t.lanes != 1) return false;
  switch (t.code) {
    case kDLFloat:
      if (t.bits == 32) {
        *out = DType::f32;
        return true;
      }
      if (t.bits == 64) {
        *out = DType::f64;
        return true;
      }
      if (t.bits == 16) {
        *out = DType::f16;
        return true;
      }
      return false;
    case kDLBfloat:
      if (t.bits == 16) {
        *out = DType::bf16;
        return true;
      }
      return false;
    case kDLUInt:
      if (t.bits == 8) {
        *out = DType::u8;
        return true;
      }
      return false;
    case kDLBool:
      if (t.bits == 8) {
        *out = DType::boolean;
        return true;
      }
      return false;
    case kDLInt:
      if (t.bits == 64) {
        *out = DType::i64;
        return true;
      }
      return false;
    default: return false;
  }
}

}  // namespace

Status from_dlpack(const DLTensor& t, const char* name, TensorView* out) {
  TensorView v;
  if (!dtype_from(t.dtype, &v.dtype))
    return fail(Status::invalid_argument,
                "%s: DLPack dtype (code %d, %d bits, %d lanes) is not one the core takes (float32/64/16, "
                "bfloat16, uint8, bool, int64)",
                name, static_cast<int>(t.dtype.code), static_cast<int>(t.dtype.bits), static_cast<int>(t.dtype.lanes));
  switch (t.device.device_type) {
    case kDLCPU:
    case kDLCUDAHost: v.device = {DeviceKind::cpu, 0}; break;  // pinned host memory is host memory
    case kDLCUDA: v.device = {DeviceKind::cuda, t.device.device_id}; break;
    default:
      return fail(Status::invalid_argument, "%s: DLPack device type %d is neither cpu nor cuda", name,
                  static_cast<int>(t.device.device_type));
  }
  if (t.ndim < 0 || t.ndim > kMaxRank)
    return fail(Status::invalid_argument, "%s: rank %d, the core takes at most %d dimensions", name,
                static_cast<int>(t.ndim), kMaxRank);
  if (t.ndim > 0 && t.shape == nullptr)
    return fail(Status::invalid_argument, "%s: DLPack tensor of rank %d without a shape", name,
                static_cast<int>(t.ndim));
  v.rank = t.ndim;
  int64_t step = 1;
  for (int d = t.ndim - 1; d >= 0; --d) {
    v.shape[d] = t.shape[d];
    v.strides[d] = t.strides ? t.strides[d] : step;  // null strides: compact row-major
    if (__builtin_mul_overflow(step, t.shape[d] > 0 ? t.shape[d] : 1, &step))
      return fail(Status::invalid_argument, "%s: the element count of its shape overflows int64", name);
  }
  v.data = t.data ? static_cast<char*>(t.data) + t.byte_offset : nullptr;
  *out = v;
  return Status::ok;
}

Status from_dlpack(const DLManagedTensorVersioned& t, const char* name, bool writable, TensorView* out) {
  if (t.version.major != DLPACK_MAJOR_VERSION)
    return fail(Status::invalid_argument, "%s: DLPack major version %u, the core reads version %d", name,
                static_cast<unsigned>(t.version.major), DLPACK_MAJOR_VERSION);
  if (writable && (t.flags & DLPACK_FLAG_BITMASK_READ_ONLY))
    return fail(Status::invalid_argument, "%s is written by this kernel but its DLPack tensor is read-only", name);
  return from_dlpack(t.dl_tensor, name, out);
}

}  // namespace hepgen
