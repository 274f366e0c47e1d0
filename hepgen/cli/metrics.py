"""``hepgen metrics jets|samplers``: the field's jet metrics (jetnet/energyflow) of a generated
sample, and the sampler study of an EPiC model."""

from __future__ import annotations

import argparse
import shlex
import sys

from hepgen.cli import options, progress


def register(subparsers) -> None:
    parser = options.command(
        subparsers,
        "metrics",
        help="the field's generative-model metrics (jets: W1M, W1P, W1EFP, FPD, KPD as jetnet defines them)",
        description="The metrics the papers quote, computed by the field's own libraries.",
    )
    sub = parser.add_subparsers(dest="metrics_kind", metavar="KIND", required=True)
    _add_jets(sub)
    _add_samplers(sub)


def _add_jets(sub) -> None:
    p = options.command(
        sub,
        "jets",
        run=run_jets,
        help="W1M, W1P, W1EFP, FPD, KPD of generated vs truth jets (needs hepgen[eval])",
        description="Compare generated with truth jets (JetNet-layout HDF5 files) through jetnet and "
        "energyflow: W1 of the relative jet mass (W1M), of the particle features (W1P), of EFPs "
        "(W1EFP), the Fréchet and kernel physics distances (FPD, KPD), each with jetnet's error, "
        "and W1 of the stored jet mass (GeV). Writes report.md, metrics.json and figures/*.png "
        "(jet mass, particle pT_rel, eta_rel, phi_rel, multiplicity; ratio panels) into the "
        "output directory. Needs pip install 'hepgen[eval]'.",
    )
    options.generated(p, help="generated jets")
    options.truth(p, required=True, help="truth jets (e.g. held-out Pythia)", old=("--reference",))
    options.output(p, kind="directory", metavar="DIR", help="report directory", old_force=("--overwrite",))
    options.max_samples(p, what="jets", old=("--max-jets",), minimum=2)
    p.add_argument(
        "--n-eval",
        type=options.int_at_least(2),
        metavar="N",
        help="jets per W1 resample (default: 50000 or the smaller sample)",
    )
    p.add_argument(
        "--batches", type=options.int_at_least(2), default=5, metavar="N", help="W1 resamples (default 5, jetnet's)"
    )
    p.add_argument("--no-efp", action="store_true", help="skip W1EFP")
    p.add_argument("--no-fpd-kpd", action="store_true", help="skip FPD and KPD")
    p.add_argument(
        "--efp-jobs",
        type=options.non_negative_int,
        default=None,
        metavar="N",
        help="deprecated and ignored: the EFPs are computed in this process (numpy), not in energyflow's pool",
    )
    options.seed(p, help="resampling seed")
    options.quiet(p)


def run_jets(args: argparse.Namespace) -> int:
    result, out = _jet_metrics(args)
    parts = [f"{k} {m.scaled(k)[0]:.3g} ± {m.scaled(k)[1]:.2g}" for k, m in result.metrics.items() if "_" not in k]
    print(f"jets: {', '.join(parts)} (scaled as in report.md); report in {out}")
    return 0


def _jet_metrics(args: argparse.Namespace):
    from hepgen.data import read_jets
    from hepgen.metrics.jets import jet_metrics, require_eval_extra
    from hepgen.metrics.jets_report import write_jet_report

    require_eval_extra()  # before the (slow) reads
    if args.efp_jobs is not None:
        print(
            "hepgen metrics jets: --efp-jobs is deprecated and ignored (the EFPs no longer run in a process pool)",
            file=sys.stderr,
        )
    generated, truth = read_jets(args.generated), read_jets(args.truth)
    n = args.max_samples
    generated = (generated.particles[:n], generated.jets[:n])
    truth = (truth.particles[:n], truth.jets[:n])
    result = jet_metrics(
        generated,
        truth,
        n_eval=args.n_eval,
        batches=args.batches,
        efp=not args.no_efp,
        fpd_kpd=not args.no_fpd_kpd,
        seed=args.seed,
        progress=progress.enabled(args.quiet),
    )
    out = write_jet_report(
        result,
        generated,
        truth,
        args.output,
        overwrite=args.force,
        inputs={"generated": str(args.generated), "reference": str(args.truth)},
        command=_jets_command(args),
    )
    return result, out


def _jets_command(args: argparse.Namespace) -> str:
    words = [
        "hepgen",
        "metrics",
        "jets",
        "--generated",
        args.generated,
        "--truth",
        args.truth,
        "-o",
        args.output,
        "--batches",
        str(args.batches),
        "--seed",
        str(args.seed),
    ]
    for flag, value in (("--max-samples", args.max_samples), ("--n-eval", args.n_eval)):
        if value is not None:
            words += [flag, str(value)]
    if args.no_efp:
        words.append("--no-efp")
    if args.no_fpd_kpd:
        words.append("--no-fpd-kpd")
    return " ".join(shlex.quote(str(w)) for w in words)


# --------------------------------------------------------------------------- samplers


def _sampler_spec(s) -> str:
    """A sampler as --samplers spells it."""
    if s.method == "dopri5":
        return f"dopri5:{s.rtol:g}" + ("" if s.atol == s.rtol else f":{s.atol:g}")
    return f"{s.method}:{s.steps}"


def _add_samplers(sub) -> None:
    from hepgen.metrics.samplers import DEFAULT_SAMPLERS  # numpy, no torch

    default = ",".join(_sampler_spec(s) for s in DEFAULT_SAMPLERS)
    p = options.command(
        sub,
        "samplers",
        run=run_samplers,
        help="sampler study: jet metrics vs network evaluations for an EPiC model (needs hepgen[eval])",
        description="Sample an EPiC-FM/EPiC-JeDi checkpoint with several ODE samplers from the same noise and "
        "jet features, count network evaluations (NFE), and score each sample against truth jets "
        "with the jetnet metrics. Writes report.md (table, the 200-NFE midpoint baseline's "
        "figures), results.json and figures/w1m_vs_nfe.png, plus baseline/ with the full "
        "generated-vs-truth report. 'equal W1M' means W1M within the baseline's bootstrap error of "
        "the baseline's W1M.",
    )
    p.add_argument(
        "--model",
        default="pretrained",
        metavar="CKPT",
        help="checkpoint of hepgen train jets, or 'pretrained' for the shipped model",
    )
    options.truth(p, required=True, help="truth jets (held-out Pythia)", old=("--reference",))
    p.add_argument(
        "--floor",
        metavar="FILE",
        help="a second Pythia sample (e.g. training jets): its metrics against --truth are the "
        "floor a perfect model would reach at these sample sizes",
    )
    options.output(p, kind="directory", metavar="DIR", help="report directory", old_force=("--overwrite",))
    p.add_argument("-n", type=options.int_at_least(2), default=5000, help="jets per sampler")
    p.add_argument(
        "--samplers",
        default=default,
        metavar="LIST",
        help=f"comma-separated METHOD:STEPS or dopri5:RTOL[:ATOL] (default {default}); "
        "midpoint:100 (200 NFE, the paper's) is always run as the baseline",
    )
    p.add_argument(
        "--full-metrics",
        action="store_true",
        help="W1EFP, FPD and KPD for every sampler too (slow: EFPs); default: W1M and W1P for "
        "every sampler, all metrics for the baseline",
    )
    options.batch_size(p, default=1024, help="jets per sampling batch")
    p.add_argument("--batches", type=options.int_at_least(2), default=5, metavar="N", help="W1 resamples")
    options.seed(p, help="noise and jet-feature seed")
    options.threads(p)
    options.quiet(p)


def run_samplers(args: argparse.Namespace) -> int:
    from hepgen.metrics.samplers import Sampler

    samplers = [Sampler.parse(t) for t in args.samplers.split(",") if t.strip()]
    table, out = _sampler_study(args, samplers)
    print(table)
    print(f"report in {out}")
    return 0


def _sampler_study(args: argparse.Namespace, samplers):
    import hepgen.models
    from hepgen.data import read_jets
    from hepgen.metrics.jets import jet_metrics, require_eval_extra
    from hepgen.metrics.samplers import run_study
    from hepgen.metrics.samplers_report import write_sampler_report

    require_eval_extra()
    model = hepgen.models.load(args.model, kind="jets")
    for s in samplers:
        if s.method not in model.methods():
            raise ValueError(f"--samplers: {s.method} is not a method of this model ({', '.join(model.methods())})")
    truth = read_jets(args.truth)
    show = progress.enabled(args.quiet)
    floor = None
    if args.floor:
        floor = jet_metrics(
            read_jets(args.floor), truth, batches=args.batches, efp=True, fpd_kpd=True, seed=0, progress=show
        )
    results = run_study(
        model,
        truth,
        samplers,
        n=args.n,
        seed=args.seed,
        batch_size=args.batch_size,
        full_metrics=args.full_metrics,
        batches=args.batches,
        progress=show,
    )
    # The baseline gets every metric and the figures.
    base_full = jet_metrics(results[0].jets, truth, batches=args.batches, seed=0, progress=show)
    out, table = write_sampler_report(
        results,
        base_full,
        truth,
        floor,
        args.output,
        model=str(args.model),
        reference_path=str(args.truth),
        n=args.n,
        seed=args.seed,
        command=_samplers_command(args),
        overwrite=args.force,
    )
    return table, out


def _samplers_command(args) -> str:
    words = [
        "hepgen",
        "metrics",
        "samplers",
        "--model",
        args.model,
        "--truth",
        args.truth,
        "-o",
        args.output,
        "-n",
        str(args.n),
        "--samplers",
        args.samplers,
        "--seed",
        str(args.seed),
        "--batches",
        str(args.batches),
        "--batch-size",
        str(args.batch_size),
    ]
    if args.floor:
        words += ["--floor", args.floor]
    if args.full_metrics:
        words.append("--full-metrics")
    if args.threads:
        words += ["--threads", str(args.threads)]
    return " ".join(shlex.quote(str(w)) for w in words)
