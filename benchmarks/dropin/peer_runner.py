"""Run a peer library's own unittest files with one of its functions replaced by hepgen's.

    python benchmarks/dropin/peer_runner.py torchdiffeq CHECKOUT   # torchdiffeq.odeint -> hepgen.ode.odeint
    python benchmarks/dropin/peer_runner.py nflows CHECKOUT        # nflows' RQ spline -> hepgen.ops.rq_spline

CHECKOUT is a checkout of the peer's repository at the version installed here (its tests/ is
read; the installed package is what runs). The peer's code is not copied into hepgen.

Each subtest (or test without subtests) is one unit. A unit is
- excluded when it never reached hepgen's function: it calls something we did not replace
  (torchdiffeq.odeint_adjoint, nflows' constrained spline or other transforms), or only a
  torchdiffeq method/feature that hepgen does not implement, which the shim hands to the peer
  itself and names (so that a test looping over all methods still reaches ours for the rest);
- excluded too when it fails in the same way with the peer's own function: the suite is run
  first unswapped (the baseline), and a unit that fails there is the peer's own failure
  (an unrelated test or a changed dependency), named with the baseline's error;
- otherwise passed or failed, with the failure's first line.
Prints a summary and writes the units as JSON (--json PATH).
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import sys
import traceback
import unittest
from pathlib import Path


class Calls:
    """What the tests called since the last look: hepgen's function, or the peer's for a named reason."""

    def __init__(self):
        self.ours = 0
        self.peer: collections.Counter = collections.Counter()

    def take(self):
        ours, peer = self.ours, dict(self.peer)
        self.ours, self.peer = 0, collections.Counter()
        return ours, peer


CALLS = Calls()


SWAP = {"on": True}  # off for the baseline run: the same counting, the peer's function


def install_torchdiffeq(checkout: Path) -> list[str]:
    import torchdiffeq

    from hepgen.ode import odeint as ours
    from hepgen.ode.dropin import NOT_IMPLEMENTED

    peer = torchdiffeq.odeint

    def odeint(func, y0, t, **kwargs):
        method = kwargs.get("method")
        if not SWAP["on"]:
            CALLS.ours += 1
            return peer(func, y0, t, **kwargs)
        if kwargs.get("event_fn") is not None:
            CALLS.peer["event_fn (not implemented)"] += 1
            return peer(func, y0, t, **kwargs)
        if method in NOT_IMPLEMENTED:
            CALLS.peer[f"method {method} (not implemented)"] += 1
            return peer(func, y0, t, **kwargs)
        CALLS.ours += 1
        return ours(func, y0, t, **kwargs)

    torchdiffeq.odeint = odeint  # the tests call torchdiffeq.odeint(...); odeint_adjoint keeps its own
    sys.path.insert(0, str(checkout / "tests"))  # they import `problems` as a top-level module
    return ["odeint_tests", "gradient_tests", "api_tests", "norm_tests", "event_tests"]


def install_nflows(checkout: Path) -> list[str]:
    import nflows.transforms.autoregressive as autoregressive
    import nflows.transforms.splines as splines
    import nflows.transforms.splines.rational_quadratic as rational_quadratic

    from hepgen.ops import rq_spline

    peer = rational_quadratic.unconstrained_rational_quadratic_spline

    def unconstrained_rational_quadratic_spline(*args, **kwargs):
        CALLS.ours += 1
        return (rq_spline if SWAP["on"] else peer)(*args, **kwargs)

    # Every binding through which nflows or its tests reach the function.
    for module in (splines, rational_quadratic, autoregressive):
        module.unconstrained_rational_quadratic_spline = unconstrained_rational_quadratic_spline
    sys.path.insert(0, str(checkout))  # `tests.transforms...`; nflows itself is already imported
    return [
        "tests.transforms.splines.rational_quadratic_test",
        "tests.transforms.coupling_test",
        "tests.transforms.nonlinearities_test",
        "tests.transforms.autoregressive_test",
    ]


PEERS = {"torchdiffeq": install_torchdiffeq, "nflows": install_nflows}


class Recorder(unittest.TestResult):
    """Records one unit per subtest (or per test without subtests) with the calls it made."""

    def __init__(self):
        super().__init__()
        self.units: list[dict] = []
        self._had_subtests = False

    def startTest(self, test):
        super().startTest(test)
        CALLS.take()
        self._had_subtests = False

    def _unit(self, test_id, params, err, skipped=None):
        ours, peer = CALLS.take()
        message = None
        if err is not None:
            message = "".join(traceback.format_exception_only(err[0], err[1])).strip().splitlines()[0][:300]
        self.units.append(
            {"test": test_id, "params": params, "ours": ours, "peer": peer, "error": message, "skipped": skipped}
        )

    def addSubTest(self, test, subtest, err):
        self._had_subtests = True
        params = {k: str(v) for k, v in subtest.params.items()}
        self._unit(test.id(), params, err)

    def addSuccess(self, test):
        if not self._had_subtests:
            self._unit(test.id(), {}, None)

    def addFailure(self, test, err):
        self._unit(test.id(), {"part": "outside subtests"} if self._had_subtests else {}, err)

    addError = addFailure

    def addSkip(self, test, reason):
        self._unit(test.id(), {}, None, skipped=reason)


def classify(unit: dict, baseline_error: str | None) -> tuple[str, str]:
    """('passed' | 'failed' | 'excluded', reason)."""
    if unit["skipped"]:
        return "excluded", f"skipped by the peer: {unit['skipped']}"
    if unit["ours"] == 0:
        if unit["peer"]:
            return "excluded", "handed to the peer: " + ", ".join(sorted(unit["peer"]))
        name = unit["test"] + " " + json.dumps(unit["params"])
        if "adjoint" in name.lower() or "seminorm" in name.lower():
            return "excluded", "adjoint (torchdiffeq.odeint_adjoint is not replaced)"
        return "excluded", "never calls the replaced function"
    if unit["error"] and baseline_error:
        return "excluded", f"fails with the peer's own function too (peer: {baseline_error}; ours: {unit['error']})"
    if unit["error"]:
        return "failed", unit["error"]
    return "passed", ""


def run(modules: list[str], swap: bool) -> list[dict]:
    SWAP["on"] = swap
    suite = unittest.TestSuite()
    for name in modules:
        suite.addTests(unittest.defaultTestLoader.loadTestsFromModule(importlib.import_module(name)))
    result = Recorder()
    suite.run(result)
    return result.units


def _key(unit):
    return unit["test"] + json.dumps(unit["params"], sort_keys=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--json", type=Path, help="write every unit with its outcome here")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unswapped run (halves the time)")
    args = parser.parse_args(argv)
    if not (args.checkout / "tests").is_dir():
        parser.error(f"{args.checkout} has no tests/ folder: pass a checkout of {args.peer}'s repository")
    modules = PEERS[args.peer](args.checkout.resolve())
    baseline_errors: dict[str, list] = collections.defaultdict(list)
    if not args.no_baseline:
        for unit in run(modules, swap=False):
            baseline_errors[_key(unit)].append(unit["error"])
        failing = sum(e is not None for errors in baseline_errors.values() for e in errors)
        print(f"{args.peer} unswapped (baseline): {failing} units fail with the peer's own function")
    units = run(modules, swap=True)

    counts: collections.Counter = collections.Counter()
    reasons: dict[str, collections.Counter] = {"failed": collections.Counter(), "excluded": collections.Counter()}
    seen: collections.Counter = collections.Counter()
    for unit in units:
        key = _key(unit)
        errors = baseline_errors.get(key, [])
        unit["baseline_error"] = errors[seen[key]] if seen[key] < len(errors) else None
        outcome, reason = classify(unit, unit["baseline_error"])
        seen[key] += 1
        unit["outcome"], unit["reason"] = outcome, reason
        counts[outcome] += 1
        if outcome != "passed":
            reasons[outcome][reason] += 1
    print(
        f"{args.peer}: {counts['passed']} passed, {counts['failed']} failed, {counts['excluded']} excluded "
        f"(units: subtests, or tests without subtests)"
    )
    for outcome in ("failed", "excluded"):
        for reason, n in reasons[outcome].most_common():
            print(f"  {outcome} x{n}: {reason}")
    for unit in units:
        if unit["outcome"] == "failed":
            print(f"  FAILED {unit['test']} {unit['params']}: {unit['reason']}")
    if args.json:
        args.json.write_text(json.dumps(units, indent=1))
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
