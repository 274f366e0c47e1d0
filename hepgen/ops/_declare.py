"""One declaration per op; this module builds everything else from it.

An op is declared once, as an :class:`Op`: its name and schema, its reference (the spec, in
``hepgen/ops/reference/``), its fake (the shape function torch.compile and export use), its
backends, and, where it is differentiable, a :class:`Backward` naming what is saved and how the
input gradients follow from the saved values and the output gradients. From that the
declaration builds

- the ``torch.library`` custom op ``hepgen::<name>`` with ``register_fake`` and
  ``register_autograd``: what torch.compile and torch.export see;
- an eager ``torch.autograd.Function`` running the same backend functions. A custom op costs
  tens of microseconds per eager call (measured ~4x the Function's overhead), more than the
  kernel at batch 1, the size a fast-simulation framework calls with;
- the dispatch (``Op.__call__``): under torch.compile, the custom op; when a gradient is
  wanted, the eager Function; otherwise the chosen backend's function alone;
- the backend choice per call (:mod:`hepgen.ops._backends`), carried into the backward pass:
  autograd runs CUDA backwards on its own thread, where a ``use_backend`` block of the calling
  thread is not in force, so the override travels in the autograd context.

A backward is itself a declared op (``set_pool_backward``) sharing its op's backend table
(entry ``"backward"``); when it declares a backward of its own, gradients of any order work
on both paths. An op with no ``backward`` (a decode step, a backward kernel) runs without
autograd. Mutating ops name their mutated arguments (``mutates=``); ops with several outputs
name them (``outputs=``) so a backward can save them, and say which are statistics rather
than differentiable results (``nondifferentiable=``).

Departure from extension-cpp (one ``TORCH_LIBRARY`` schema per op, kernels registered per
dispatch key): our backends are chosen by our own table, not by the dispatcher, because the
choice depends on more than the device (dtype, build, Triton, ``use_backend``), and the eager
path must not pay the dispatcher.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import torch

from hepgen.ops._backends import BACKEND_NAMES, OpBackends, op_backends, records_forced_backend, under_forced_backend

__all__ = ["Backward", "Op", "declared_ops", "recording"]

_DECLARED: dict[str, Op] = {}
# While recording (the conformance tests' opcheck), every backend call appends (op, args) here.
_RECORD: list | None = None


def _use_custom_op() -> bool:
    """Whether calls go through the custom op (a seam the tests patch to exercise that path)."""
    return torch.compiler.is_compiling()


@dataclass(frozen=True)
class Backward:
    """How a declared op's inputs get their gradients.

    save: names of the inputs and outputs the gradients need; tensors are kept with
        ``save_for_backward``, other values as they are.
    grads: ``grads(call, saved, *grad_outputs)`` returns one gradient (or None) per input, in
        schema order (a list of gradients for a Tensor[] input). ``saved`` has the saved
        values as attributes; ``call`` runs the op named by ``op`` on the path (custom op or
        eager) this backward runs on.
    op: the declared op computing the gradients (usually ``<name>_backward``); None when
        ``grads`` needs no kernel.
    """

    save: tuple[str, ...]
    grads: Callable
    op: str | None = None


class Op:
    """A declared op: see the module docstring. Call it with checked arguments in schema order."""

    def __init__(
        self,
        name: str,
        schema: str,
        *,
        reference: Callable,
        fake: Callable,
        backends: dict[str, Callable] | None = None,
        family: str | None = None,
        preference: dict[str, tuple[str, ...]] | None = None,
        restrictions: Sequence[tuple[str, str, Sequence[torch.dtype], str]] = (),
        backward: Backward | None = None,
        mutates: tuple[str, ...] = (),
        outputs: tuple[str, ...] = (),
        nondifferentiable: tuple[str, ...] = (),
        check: Callable | None = None,
        validate: Callable | None = None,
    ):
        """
        Args:
            name: the op is ``hepgen::<name>``.
            schema: its signature in torch's schema language, without the name, e.g.
                ``"(Tensor x, Tensor mask, float sum_scale) -> Tensor"``.
            reference: the plain-PyTorch spec; it is also the ``reference`` backend.
            fake: output shapes and dtypes from the inputs (``register_fake``).
            backends: {backend name: function with the schema's arguments} besides reference.
            family: the backend table this op belongs to (default: its own name); a
                ``<family>_<entry>`` op (``set_pool_backward``) is the table's ``entry``, so
                ``use_backend({"set_pool": ...})`` governs the backward too.
            preference: {device type: backends in order of preference} for the table.
            restrictions: (backend, device type, dtypes it runs, why not others) of this op.
            backward: how the inputs get gradients; None: no autograd.
            mutates: names of the arguments written in place.
            outputs: names of the outputs (a Backward may save them).
            nondifferentiable: outputs that are saved statistics, not results to differentiate.
            check: the public function's argument checks, kept with the declaration: run once,
                before any kernel, they raise TypeError/ValueError naming the argument and return
                what the public function passes on (the schema's arguments, as a rule).
            validate: ``validate(*schema_args)`` checks the schema's arguments as they reach the
                registered op ``torch.ops.hepgen.<name>`` (torch.compile graphs, exported
                programs and users call it without the public function): it raises
                TypeError/ValueError naming the argument, converts nothing and returns None.
                It runs in the custom op's body before any backend, so no path reaches a
                kernel with arguments the kernel would index out of bounds, and in its fake
                (torch.compile traces and meta tensors get the same errors).
        """
        self.name = name
        self.schema = schema
        self.family = family or name
        self.entry = "forward" if self.family == name else name[len(self.family) + 1 :]
        if self.entry != "forward" and not name.startswith(self.family + "_"):
            raise ValueError(f"op {name!r} of family {self.family!r} must be named {self.family}_<entry>")
        parsed = torch._C.parse_schema(f"hepgen::{name}{schema}")
        self.arg_names = tuple(a.name for a in parsed.arguments)
        kinds = [str(a.type) for a in parsed.arguments]
        self._tensor_args = tuple(i for i, k in enumerate(kinds) if k in ("Tensor", "Optional[Tensor]"))
        self._list_args = tuple(i for i, k in enumerate(kinds) if k == "List[Tensor]")
        self._tensor_names = frozenset(self.arg_names[i] for i in self._tensor_args)  # an optional one may be None
        # The backend is chosen from the first Tensor argument's device and dtype.
        self._chooser = next(i for i, k in enumerate(kinds) if k == "Tensor")
        self.n_outputs = len(parsed.returns)
        self.outputs = outputs or tuple(f"out{i}" for i in range(self.n_outputs))
        if len(self.outputs) != self.n_outputs:
            raise ValueError(f"{name}: outputs names {self.outputs} but the schema returns {self.n_outputs}")
        self._nondiff = tuple(self.outputs.index(o) for o in nondifferentiable)
        self.reference = reference
        self.fake = fake
        self.backward = backward
        self.mutates = mutates
        self.check = check
        self.validate = validate
        self.table: OpBackends = op_backends(self.family, preference)
        fns = {"reference": reference, **(backends or {})}
        for backend in sorted(fns, key=_backend_order):
            self.table.add(backend, self.entry, fns[backend])
        for backend, device_type, dtypes, reason in restrictions:
            self.table.restrict(backend, device_type, dtypes, reason)
        self.custom_op = self._build_custom_op()
        self._eager_function: type | None = None
        _DECLARED[name] = self

    # ---- running one backend ------------------------------------------------------------

    def choose(self, *args) -> str:
        t = args[self._chooser]
        return self.table.choose(t.device, t.dtype)

    def run(self, *args):
        """The chosen backend's function on `args`, no autograd of ours around it."""
        if _RECORD is not None:
            _RECORD.append((self, args))
        return self.table.impls[self.choose(*args)][self.entry](*args)

    # ---- dispatch -----------------------------------------------------------------------

    def __call__(self, *args):
        if _use_custom_op():
            return self.custom_op(*args)
        if self.backward is None:
            # No autograd (a decode step, a backward kernel): the reference backend must not
            # record a graph either, and in-place writes must not be seen by autograd.
            with torch.no_grad():
                return self.run(*args)
        if torch.is_grad_enabled() and self._any_requires_grad(args):
            return self._eager_apply(args)
        return self.run(*args)

    def _any_requires_grad(self, args) -> bool:
        for i in self._tensor_args:
            t = args[i]
            if t is not None and t.requires_grad:
                return True
        for i in self._list_args:
            if any(t.requires_grad for t in args[i]):
                return True
        return False

    # ---- saving for backward (both paths) ------------------------------------------------

    def _save(self, ctx, args, outputs) -> None:
        values = dict(zip(self.arg_names, args))
        values.update(zip(self.outputs, outputs if self.n_outputs > 1 else (outputs,)))
        tensors, layout = [], []
        for name in self.backward.save:
            v = values[name]
            if isinstance(v, torch.Tensor) or (v is None and name in self._tensor_names):
                layout.append((name, "tensor", None))
                tensors.append(v)
            elif isinstance(v, (list, tuple)) and v and all(isinstance(t, torch.Tensor) for t in v):
                layout.append((name, "tensors", len(v)))
                tensors.extend(v)
            else:
                layout.append((name, "value", v))
        ctx.save_for_backward(*tensors)
        ctx.hepgen_saved_layout = layout

    @staticmethod
    def _load(ctx) -> SimpleNamespace:
        tensors = iter(ctx.saved_tensors)
        saved = {}
        for name, kind, extra in ctx.hepgen_saved_layout:
            if kind == "tensor":
                saved[name] = next(tensors)
            elif kind == "tensors":
                saved[name] = [next(tensors) for _ in range(extra)]
            else:
                saved[name] = extra
        return SimpleNamespace(**saved)

    def _backward_op(self) -> Op | None:
        return None if self.backward.op is None else _DECLARED[self.backward.op]

    # ---- the custom op -------------------------------------------------------------------

    def _build_custom_op(self):
        def body(*args):
            if self.validate is not None:
                self.validate(*args)
            out = self.run(*args)
            return _unaliased(out, args)

        def fake(*args):
            # The same check where no body runs: torch.compile's tracing (FakeTensors) and
            # meta tensors (a call with a meta tensor among its arguments dispatches here).
            if self.validate is not None:
                self.validate(*args)
            return self.fake(*args)

        op = torch.library.custom_op(f"hepgen::{self.name}", body, mutates_args=self.mutates, schema=self.schema)
        op.register_fake(fake)
        if self.backward is not None:

            @records_forced_backend
            def setup_context(ctx, inputs, output):
                self._save(ctx, inputs, output)
                empty = (i for i, a in enumerate(inputs) if isinstance(a, (list, tuple)) and not a)
                ctx.hepgen_empty_lists = tuple(empty)

            @under_forced_backend
            def backward(ctx, *grad_outputs):
                bwd = self._backward_op()
                grads = self.backward.grads(None if bwd is None else bwd.custom_op, self._load(ctx), *grad_outputs)
                # torch matches the gradients' structure to the inputs': an empty list (no terms)
                # takes an empty list, not None.
                return tuple([] if i in ctx.hepgen_empty_lists and g is None else g for i, g in enumerate(grads))

            op.register_autograd(backward, setup_context=setup_context)
        return op

    # ---- the eager path ------------------------------------------------------------------

    def _eager_apply(self, args):
        fn = self._eager_function or self._build_eager_function()
        if not self._list_args:
            return fn.apply(self, None, *args)
        flat, sizes = [], []
        for i, a in enumerate(args):
            if i in self._list_args:
                sizes.append(len(a))
                flat.extend(a)
            else:
                flat.append(a)
        return fn.apply(self, tuple(sizes), *flat)

    def _unflatten(self, sizes, flat) -> tuple:
        if sizes is None:
            return tuple(flat)
        flat, args, lists = list(flat), [], iter(sizes)
        for i in range(len(self.arg_names)):
            if i in self._list_args:
                n = next(lists)
                args.append(flat[:n])
                del flat[:n]
            else:
                args.append(flat.pop(0))
        return tuple(args)

    def _flatten_grads(self, sizes, grads) -> tuple:
        if sizes is None:
            return tuple(grads)
        flat, lists = [], iter(sizes)
        for i, g in enumerate(grads):
            if i in self._list_args:
                n = next(lists)
                flat.extend([None] * n if g is None else g)
            else:
                flat.append(g)
        return tuple(flat)

    def _build_eager_function(self) -> type:
        bwd = self._backward_op()
        # Gradients of gradients exist where the backward op is differentiable itself.
        twice = bwd is not None and bwd.backward is not None
        op = self

        @records_forced_backend
        def forward(ctx, _op, sizes, *flat):
            args = op._unflatten(sizes, flat)
            ctx.hepgen_sizes = sizes
            outputs = op.run(*args)
            op._save(ctx, args, outputs)
            if op._nondiff:
                ctx.mark_non_differentiable(*(outputs[i] for i in op._nondiff))
            return outputs

        @under_forced_backend
        def backward(ctx, *grad_outputs):
            call = None if bwd is None else (bwd if twice else bwd.run)
            grads = op.backward.grads(call, op._load(ctx), *grad_outputs)
            return (None, None, *op._flatten_grads(ctx.hepgen_sizes, grads))

        if not twice:
            backward = torch.autograd.function.once_differentiable(backward)
        name = "".join(part.title() for part in self.name.split("_")) + "Eager"
        self._eager_function = type(
            name, (torch.autograd.Function,), {"forward": staticmethod(forward), "backward": staticmethod(backward)}
        )
        return self._eager_function


def _backend_order(name: str) -> int:
    if name not in BACKEND_NAMES:
        raise ValueError(f"backend must be one of {', '.join(BACKEND_NAMES)}, got {name!r}")
    return BACKEND_NAMES.index(name)


def _unaliased(out, args):
    """custom_op outputs may alias neither an input nor each other: copy those that do."""
    seen = {t.data_ptr() for t in _tensors(args) if t.numel()}

    def fresh(t):
        if not isinstance(t, torch.Tensor) or not t.numel():
            return t
        if t.data_ptr() in seen:
            t = t.clone()
        seen.add(t.data_ptr())
        return t

    if isinstance(out, tuple):
        return tuple([fresh(t) for t in o] if isinstance(o, list) else fresh(o) for o in out)
    return fresh(out)


def _tensors(args) -> Iterator[torch.Tensor]:
    for a in args:
        if isinstance(a, torch.Tensor):
            yield a
        elif isinstance(a, (list, tuple)):
            yield from (t for t in a if isinstance(t, torch.Tensor))


def declared_ops() -> dict[str, Op]:
    """{name: Op} of every declared op (backward and decode ops included)."""
    return dict(_DECLARED)


@contextlib.contextmanager
def recording() -> Iterator[list]:
    """Record (op, args) of every backend call inside the block (for opcheck in the tests)."""
    global _RECORD
    previous, _RECORD = _RECORD, []
    try:
        yield _RECORD
    finally:
        _RECORD = previous
