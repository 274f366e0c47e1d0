"""``hepgen metrics jets``: the field's jet metrics (jetnet/energyflow) of a generated sample."""

from __future__ import annotations

import argparse
import shlex


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "metrics",
        help="the field's generative-model metrics (jets: W1M, W1P, W1EFP, FPD, KPD via jetnet)",
        description="The metrics the papers quote, computed by the field's own libraries.",
    )
    sub = parser.add_subparsers(dest="metrics_kind", metavar="KIND", required=True)
    jets = sub.add_parser(
        "jets",
        help="W1M, W1P, W1EFP, FPD, KPD of generated vs reference jets (needs hepgen[eval])",
        description=(
            "Compare generated with reference jets (JetNet-layout HDF5 files) through jetnet and "
            "energyflow: W1 of the relative jet mass (W1M), of the particle features (W1P), of "
            "EFPs (W1EFP), the Fréchet and kernel physics distances (FPD, KPD), each with "
            "jetnet's error, and W1 of the stored jet mass. Writes report.md, metrics.json and "
            "figures/*.png (jet mass, particle pT_rel, eta_rel, phi_rel, multiplicity; ratio "
            "panels) into the output directory. Needs pip install 'hepgen[eval]'."
        ),
    )
    jets.add_argument("--generated", required=True, metavar="A.h5", help="generated jets")
    jets.add_argument("--reference", required=True, metavar="B.h5", help="reference jets (e.g. held-out Pythia)")
    jets.add_argument("-o", "--output", required=True, metavar="DIR", help="report directory")
    jets.add_argument("--overwrite", action="store_true", help="replace an existing report")
    jets.add_argument("--max-jets", type=int, metavar="N", help="use at most the first N jets of each file")
    jets.add_argument("--n-eval", type=int, metavar="N",
                      help="jets per W1 resample (default: 50000 or the smaller sample)")
    jets.add_argument("--batches", type=int, default=5, help="W1 resamples (default 5, jetnet's)")
    jets.add_argument("--no-efp", action="store_true", help="skip W1EFP")
    jets.add_argument("--no-fpd-kpd", action="store_true", help="skip FPD and KPD")
    jets.add_argument("--efp-jobs", type=int, default=1,
                      help="processes for energyflow's EFPs (default 1; 0: one per CPU)")
    jets.add_argument("--seed", type=int, default=0, help="resampling seed (default 0)")
    jets.add_argument("--quiet", action="store_true", help="no progress bar")
    jets.set_defaults(run=run_jets)
    from hepgen.metrics.samplers_cli import register_samplers

    register_samplers(sub)


def run_jets(args: argparse.Namespace) -> int:
    from hepgen.data.jets import read_jets
    from hepgen.metrics.jets import _import_jetnet, jet_metrics
    from hepgen.metrics.jets_report import write_jet_report
    from hepgen.metrics.report import check_output

    # Everything checkable is checked before the (slow) metrics.
    check_output(args.output, args.overwrite)
    for flag, value in (("--max-jets", args.max_jets), ("--n-eval", args.n_eval)):
        if value is not None and value < 2:
            raise ValueError(f"{flag}: expected an integer >= 2, got {value}")
    if args.batches < 2:
        raise ValueError(f"--batches: expected an integer >= 2, got {args.batches}")
    if args.efp_jobs < 0:
        raise ValueError(f"--efp-jobs: expected 0 (one per CPU) or a positive integer, got {args.efp_jobs}")
    try:
        _import_jetnet()
    except ImportError as err:
        raise RuntimeError(str(err)) from None
    generated = read_jets(args.generated)
    reference = read_jets(args.reference)
    if args.max_jets:
        generated = (generated.particles[: args.max_jets], generated.jets[: args.max_jets])
        reference = (reference.particles[: args.max_jets], reference.jets[: args.max_jets])
    result = jet_metrics(generated, reference, n_eval=args.n_eval, batches=args.batches,
                         efp=not args.no_efp, fpd_kpd=not args.no_fpd_kpd,
                         efp_jobs=args.efp_jobs or None, seed=args.seed, progress=not args.quiet)
    out = write_jet_report(result, generated, reference, args.output, overwrite=args.overwrite,
                           inputs={"generated": str(args.generated), "reference": str(args.reference)},
                           command=_command_line(args))
    if not args.quiet:
        parts = [f"{k} {m.scaled(k)[0]:.3g} ± {m.scaled(k)[1]:.2g}" for k, m in result.metrics.items()
                 if "_" not in k]
        print(f"jets: {', '.join(parts)} (scaled as in report.md); report in {out}")
    return 0


def _command_line(args: argparse.Namespace) -> str:
    words = ["hepgen", "metrics", "jets", "--generated", args.generated, "--reference", args.reference,
             "-o", args.output, "--batches", str(args.batches), "--seed", str(args.seed)]
    for flag, value in (("--max-jets", args.max_jets), ("--n-eval", args.n_eval)):
        if value is not None:
            words += [flag, str(value)]
    if args.no_efp:
        words.append("--no-efp")
    if args.no_fpd_kpd:
        words.append("--no-fpd-kpd")
    return " ".join(shlex.quote(str(w)) for w in words)
