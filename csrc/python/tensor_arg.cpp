// Python objects -> hepgen::TensorView (see tensor_arg.h).
#include "tensor_arg.h"

#include <stdexcept>
#include <string>

#include "hepgen/dlpack.h"

namespace hepgen_python {
namespace {

[[noreturn]] void refuse(const char* name, const std::string& why) {
  throw py::value_error(std::string(name) + ": " + why);
}

void check_status(hepgen::Status status) {
  if (status != hepgen::Status::ok) throw py::value_error(hepgen::last_error());
}

// The C exchange API of obj's type, or nullptr. One cached type: the ops see torch tensors,
// so the lookup is a pointer compare. Called with the GIL held (the cache needs no lock).
const DLPackExchangeAPI* exchange_api(py::handle obj) {
  static PyTypeObject* cached_type = nullptr;
  static const DLPackExchangeAPI* cached_api = nullptr;
  PyTypeObject* type = Py_TYPE(obj.ptr());
  if (type == cached_type) return cached_api;
  const DLPackExchangeAPI* api = nullptr;
  PyObject* capsule = PyObject_GetAttrString(reinterpret_cast<PyObject*>(type), "__dlpack_c_exchange_api__");
  if (capsule == nullptr) {
    PyErr_Clear();
  } else {
    if (PyCapsule_IsValid(capsule, "dlpack_exchange_api")) {
      auto* candidate = static_cast<const DLPackExchangeAPI*>(PyCapsule_GetPointer(capsule, "dlpack_exchange_api"));
      // Walk to the first table of our major version (prev_api chains older ones).
      const DLPackExchangeAPIHeader* header = candidate ? &candidate->header : nullptr;
      while (header && header->version.major > DLPACK_MAJOR_VERSION) header = header->prev_api;
      if (header && header->version.major == DLPACK_MAJOR_VERSION)
        api = reinterpret_cast<const DLPackExchangeAPI*>(header);
    }
    Py_DECREF(capsule);
  }
  cached_type = type;  // the type object outlives its instances; a stale entry is only a miss
  cached_api = api;
  return api;
}

// torch's to_dlpack when obj is a torch tensor (torch already imported by the caller), else
// None. For torch without the C exchange API (before 2.10): its Python-level __dlpack__
// refuses tensors that require grad -- which autograd.Function.forward receives -- and costs
// ~2 us, while torch.utils.dlpack.to_dlpack takes any strided tensor for ~0.2 us.
py::object torch_to_dlpack(py::handle obj) {
  PyObject* torch = PyImport_GetModule(py::str("torch").ptr());  // never imports torch itself
  if (torch == nullptr) {
    PyErr_Clear();
    return py::none();
  }
  const py::object module = py::reinterpret_steal<py::object>(torch);
  if (!py::isinstance(obj, module.attr("Tensor"))) return py::none();
  return py::module_::import("torch.utils.dlpack").attr("to_dlpack");
}

}  // namespace

TensorArg::TensorArg(py::handle obj, const char* name, bool writable, std::uintptr_t cuda_stream) {
  if (const DLPackExchangeAPI* api = exchange_api(obj)) {
    DLTensor dl{};
    if (api->dltensor_from_py_object_no_sync(obj.ptr(), &dl) != 0) throw py::error_already_set();
    check_status(hepgen::from_dlpack(dl, name, &view_));
    return;
  }
  if (PyCapsule_CheckExact(obj.ptr())) {
    from_capsule(obj, name, writable);
    return;
  }
  const py::object to_dlpack = torch_to_dlpack(obj);
  if (!to_dlpack.is_none()) {
    from_capsule(to_dlpack(obj), name, writable);
    return;
  }
  if (!py::hasattr(obj, "__dlpack__"))
    refuse(name, std::string("expected a tensor (an object with __dlpack__ or a DLPack capsule), got ") +
                     std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  // DLPack's stream convention: 1 is the legacy default stream (our 0); None on the CPU.
  py::object capsule =
      cuda_stream != 0 ? obj.attr("__dlpack__")(py::arg("stream") = cuda_stream) : obj.attr("__dlpack__")();
  from_capsule(capsule, name, writable);
}

void TensorArg::from_capsule(py::handle capsule, const char* name, bool writable) {
  PyObject* cap = capsule.ptr();
  if (PyCapsule_IsValid(cap, "dltensor_versioned")) {
    auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(cap, "dltensor_versioned"));
    if (PyCapsule_SetName(cap, "used_dltensor_versioned") != 0) throw py::error_already_set();
    managed_versioned_ = m;  // ours from here: the deleter runs in release()
    refuse_owned(hepgen::from_dlpack(*m, name, writable, &view_));
    return;
  }
  if (PyCapsule_IsValid(cap, "dltensor")) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
    if (PyCapsule_SetName(cap, "used_dltensor") != 0) throw py::error_already_set();
    managed_ = m;
    refuse_owned(hepgen::from_dlpack(m->dl_tensor, name, &view_));
    return;
  }
  if (PyCapsule_IsValid(cap, "used_dltensor") || PyCapsule_IsValid(cap, "used_dltensor_versioned"))
    refuse(name, "this DLPack capsule was already consumed (a capsule can be passed once)");
  refuse(name, "a capsule that is not a DLPack tensor");
}

// A capsule consumed and then refused: its deleter runs now. The throw leaves the constructor,
// so ~TensorArg never runs (without this, every refused tensor leaked: the producer's array
// stayed referenced for ever).
void TensorArg::refuse_owned(hepgen::Status status) {
  if (status == hepgen::Status::ok) return;
  const std::string message = hepgen::last_error();
  release();
  throw py::value_error(message);
}

TensorArg& TensorArg::operator=(TensorArg&& other) noexcept {
  if (this != &other) {
    release();
    view_ = other.view_;
    managed_ = other.managed_;
    managed_versioned_ = other.managed_versioned_;
    other.managed_ = nullptr;
    other.managed_versioned_ = nullptr;
  }
  return *this;
}

void TensorArg::release() {
  if (managed_ && managed_->deleter) managed_->deleter(managed_);
  if (managed_versioned_ && managed_versioned_->deleter) managed_versioned_->deleter(managed_versioned_);
  managed_ = nullptr;
  managed_versioned_ = nullptr;
}

}  // namespace hepgen_python
