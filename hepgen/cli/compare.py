"""``hepgen compare events``: histograms of truth against one or more generated files, with
Bayesian ensemble bands and ratio panels, and a precision table."""

from __future__ import annotations

import argparse
from pathlib import Path

from hepgen.cli import options, progress


def register(subparsers) -> None:
    parser = options.command(
        subparsers,
        "compare",
        help="plot generated samples against truth (events)",
        description="Histograms of truth against generated files, with ratio panels "
        "and ensemble uncertainty bands, and a precision table.",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    p = options.command(
        kinds,
        "events",
        run=run_events,
        help="histograms and precision of generated Z+jets events vs truth",
        description="Plot muon and jet pT and eta, M_mumu and Delta R_jj of truth and of each "
        "generated file (Bayesian ensembles as bands, ratio panels), and write "
        "precision.md / precision.json: the 1-Wasserstein distance of M_mumu and "
        "Delta R_j1j2 to truth, per ensemble member, beside the truth-vs-truth "
        "floor, with the training time (from the checkpoint, if present) and "
        "the sampling time per 10^5 events (from the file).",
    )
    options.truth(p, required=True, help="held-out truth event file")
    options.generated(p, many=True, help="generated event files (from `hepgen generate events`)")
    # The files used to be given as positional arguments: still accepted, for one release.
    p.add_argument("old_generated", nargs="*", metavar="GEN.h5", help=argparse.SUPPRESS)
    p.add_argument("--labels", metavar="A,B,...", help="legend labels (default: the file names)")
    options.output(p, kind="directory", metavar="DIR", help="directory for PNGs and tables")
    p.add_argument(
        "--observables",
        metavar="NAME,...",
        help="plot only these (default: m_mumu, pt/eta of mu1 mu2 j1 j2 j3, dr_j1j2 dr_j1j3 dr_j2j3)",
    )
    options.quiet(p)


def _generated_files(args: argparse.Namespace) -> list[str]:
    files = list(args.generated or [])
    if args.old_generated:
        options.deprecated("generated files as positional arguments", "--generated FILE ...")
        files += args.old_generated
    if not files:
        raise ValueError("no generated files: pass --generated FILE ...")
    return files


def run_events(args: argparse.Namespace) -> int:
    from hepgen.cli.generate import observables

    generated = _generated_files(args)
    labels = args.labels.split(",") if args.labels else [Path(p).stem for p in generated]
    if len(labels) != len(generated):
        raise ValueError(f"--labels: {len(labels)} labels for {len(generated)} files")
    names = observables(args.observables)
    for path in [args.truth, *generated]:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file")
    table, n_plots = _compare_events(args, dict(zip(labels, generated)), names)
    print(table, end="")
    print(f"wrote {n_plots} plots, precision.md and precision.json to {args.output}")
    return 0


def _compare_events(args: argparse.Namespace, files: dict[str, str], names) -> tuple[str, int]:
    import json

    from hepgen.data import read_events
    from hepgen.metrics.events_plots import write_plots
    from hepgen.metrics.events_precision import precision, precision_table
    from hepgen.models.events.files import run_info

    truth = read_events(args.truth)
    samples = {label: read_events(path) for label, path in files.items()}
    generated = {label: (sample, sample.members) for label, sample in samples.items()}
    out = Path(args.output)
    written = write_plots(truth, generated, out, names=names, progress=progress.over(args.quiet, "plot"))
    results = {label: precision(truth, sample, members) for label, (sample, members) in generated.items()}
    info = {label: run_info(path) for label, path in files.items()}
    (out / "precision.json").write_text(
        json.dumps({label: {**results[label], "run": info[label]} for label in files}, indent=1)
    )
    table = precision_table(results, info)
    (out / "precision.md").write_text(table)
    return table, len(written)
