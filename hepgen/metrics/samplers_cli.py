"""``hepgen metrics samplers``: quality per ODE sampler and network evaluations of an EPiC model."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import tempfile
from pathlib import Path


def register_samplers(sub) -> None:
    from hepgen.metrics.samplers import DEFAULT_SAMPLERS

    default = ",".join(_spec(s) for s in DEFAULT_SAMPLERS)
    p = sub.add_parser(
        "samplers",
        help="sampler study: jet metrics vs network evaluations for an EPiC model (needs hepgen[eval])",
        description=(
            "Sample an EPiC-FM/EPiC-JeDi checkpoint with several ODE samplers from the same noise and "
            "jet features, count network evaluations (NFE), and score each sample against reference "
            "jets with the jetnet metrics. Writes report.md (table, the 200-NFE midpoint baseline's "
            "figures), results.json and figures/w1m_vs_nfe.png, plus baseline/ with the full "
            "generated-vs-reference report. 'equal W1M' means W1M within the baseline's bootstrap "
            "error of the baseline's W1M."
        ),
    )
    p.add_argument("--model", default="pretrained", metavar="CKPT",
                   help="checkpoint of hepgen train jets, or 'pretrained' (default) for the shipped model")
    p.add_argument("--reference", required=True, metavar="B.h5", help="reference jets (held-out Pythia)")
    p.add_argument("--floor", metavar="C.h5",
                   help="a second Pythia sample (e.g. training jets): its metrics against --reference "
                        "are the floor a perfect model would reach at these sample sizes")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="report directory")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    p.add_argument("-n", type=int, default=5000, help="jets per sampler (default 5000)")
    p.add_argument("--samplers", default=default, metavar="LIST",
                   help=f"comma-separated METHOD:STEPS or dopri5:RTOL[:ATOL] (default {default}); "
                        "midpoint:100 (200 NFE, the paper's) is always run as the baseline")
    p.add_argument("--full-metrics", action="store_true",
                   help="W1EFP, FPD and KPD for every sampler too (slow: EFPs); default: W1M and W1P "
                        "for every sampler, all metrics for the baseline")
    p.add_argument("--batch-size", type=int, default=1024, help="jets per sampling batch (default 1024)")
    p.add_argument("--batches", type=int, default=5, help="W1 resamples (default 5)")
    p.add_argument("--seed", type=int, default=0, help="noise and jet-feature seed (default 0)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run_samplers)


def _spec(s) -> str:
    if s.method == "dopri5":
        return f"dopri5:{s.rtol:g}" + ("" if s.atol == s.rtol else f":{s.atol:g}")
    return f"{s.method}:{s.steps}"


def run_samplers(args: argparse.Namespace) -> int:
    import torch

    from hepgen.data.jets import read_jets
    from hepgen.metrics.jets import _import_jetnet, jet_metrics
    from hepgen.metrics.jets_report import write_jet_report
    from hepgen.metrics.report import _move_into_place, check_output
    from hepgen.metrics.samplers import BASELINE, Sampler, markdown_table, run_study

    out_dir = check_output(args.output, args.overwrite)
    samplers = [Sampler.parse(t) for t in args.samplers.split(",") if t.strip()]
    for flag, value in (("-n", args.n), ("--batch-size", args.batch_size), ("--threads", args.threads)):
        if value is not None and value < 1:
            raise ValueError(f"{flag}: expected a positive integer, got {value}")
    if args.n < 2 or args.batches < 2:
        raise ValueError("-n and --batches: expected integers >= 2")
    try:
        _import_jetnet()
    except ImportError as err:
        raise RuntimeError(str(err)) from None
    from hepgen.models.epic import load

    model = load(args.model)
    for s in samplers:
        if s.method not in model.methods():
            raise ValueError(f"--samplers: {s.method} is not a method of this model "
                             f"({', '.join(model.methods())})")
    if args.threads:
        torch.set_num_threads(args.threads)
    reference = read_jets(args.reference)
    floor = None
    if args.floor:
        other = read_jets(args.floor)
        floor = jet_metrics(other, reference, batches=args.batches, efp=True, fpd_kpd=True,
                            seed=0, progress=not args.quiet)
    results = run_study(model, reference, samplers, n=args.n, seed=args.seed, batch_size=args.batch_size,
                        full_metrics=args.full_metrics, batches=args.batches, progress=not args.quiet)
    base = results[0]
    assert base.sampler == BASELINE
    # The baseline gets every metric and the figures.
    base_jets = base.jets
    base_full = jet_metrics(base_jets, reference, batches=args.batches, seed=0, progress=not args.quiet)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        write_jet_report(base_full, base_jets, reference, staging / "baseline",
                         inputs={"generated": f"{args.model}, {BASELINE.name}, seed {args.seed}",
                                 "reference": str(args.reference)})
        (staging / "figures").mkdir()
        _w1m_figure(results, floor, staging / "figures" / "w1m_vs_nfe.png")
        command = _command_line(args)
        table = markdown_table(results, floor)
        data = {"command": command, "model": str(args.model), "reference": str(args.reference), "n": args.n,
                "seed": args.seed, "floor": None if floor is None else floor.to_dict(),
                "baseline_full": base_full.to_dict(),
                "samplers": [{"sampler": r.sampler.name, "method": r.sampler.method, "steps": r.sampler.steps,
                              "rtol": r.sampler.rtol, "atol": r.sampler.atol, "nfe": r.nfe,
                              "seconds": r.seconds, "rms_to_baseline": r.rms_to_baseline,
                              **r.metrics.to_dict()} for r in results]}
        (staging / "results.json").write_text(json.dumps(data, indent=2) + "\n")
        (staging / "report.md").write_text(_markdown(results, base_full, table, command, args))
        _move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not args.quiet:
        print(table)
        print(f"report in {out_dir}")
    return 0


def _markdown(results, base_full, table, command, args) -> str:
    from hepgen.metrics.samplers import equal_quality

    base = results[0]
    cheap = [r for r in results[1:] if equal_quality(r, base) and base.nfe / r.nfe >= 3]
    verdict = (f"Samplers with W1M within the baseline's error at ≥ 3× fewer NFE: "
               + ", ".join(f"{r.sampler.name} ({r.nfe} NFE, {base.nfe / r.nfe:.1f}×)" for r in cheap)
               if cheap else "No sampler reached the baseline's W1M (within its error) at ≥ 3× fewer NFE.")
    return "\n".join([
        "# Sampler study", "",
        f"- model: `{args.model}`; reference: `{args.reference}`; {args.n} jets per sampler, seed {args.seed}",
        "- every sampler integrates the same noise with the same drawn jet features; NFE counted by a hook "
        "on the network (per batch of jets)", "",
        "Reproduce with:", "", "```bash", command, "```", "",
        table, "", verdict, "",
        "![W1M vs NFE](figures/w1m_vs_nfe.png)", "",
        "## Baseline (midpoint, 100 steps) against the reference, all metrics", "",
        base_full.markdown_table(), "",
        "Figures: [baseline/report.md](baseline/report.md).", "",
    ])


def _w1m_figure(results, floor, path) -> None:
    import matplotlib.pyplot as plt

    from hepgen.metrics.plots import style

    with style():
        fig, ax = plt.subplots(figsize=(7, 5))
        fig.subplots_adjust(left=0.14, right=0.97, top=0.95, bottom=0.13)
        methods = sorted({r.sampler.method for r in results})
        for method in methods:
            rows = sorted((r for r in results if r.sampler.method == method), key=lambda r: r.nfe)
            ax.errorbar([r.nfe for r in rows], [r.metrics["w1m"].value * 1e3 for r in rows],
                        yerr=[r.metrics["w1m"].error * 1e3 for r in rows], marker="o", capsize=3, label=method)
        base = results[0].metrics["w1m"]
        ax.axhspan((base.value - base.error) * 1e3, (base.value + base.error) * 1e3, color="grey", alpha=0.25,
                   label="midpoint 200 NFE ± error")
        if floor is not None:
            ax.axhline(floor["w1m"].value * 1e3, color="black", ls="--", lw=1, label="Pythia vs Pythia")
        ax.set_xscale("log")
        ax.set_xlabel("network evaluations (NFE)")
        ax.set_ylabel(r"W1M $\times 10^3$")
        ax.legend(fontsize="small")
        fig.savefig(path, dpi=110)
        plt.close(fig)


def _command_line(args) -> str:
    words = ["hepgen", "metrics", "samplers", "--model", args.model, "--reference", args.reference,
             "-o", args.output, "-n", str(args.n), "--samplers", args.samplers, "--seed", str(args.seed),
             "--batches", str(args.batches), "--batch-size", str(args.batch_size)]
    if args.floor:
        words += ["--floor", args.floor]
    if args.full_metrics:
        words.append("--full-metrics")
    if args.threads:
        words += ["--threads", str(args.threads)]
    return " ".join(shlex.quote(str(w)) for w in words)
