"""``hepgen evaluate``: classifier-based evaluation of a generated sample against truth."""

from __future__ import annotations

import argparse
import shlex


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="compare a generated sample with truth through a classifier (AUC, JSD, weights)",
        description=(
            "Train a classifier to tell truth from generated samples; report the AUC, the "
            "JSD, the weights w = D/(1-D) ~ p_truth/p_generated on held-out samples, where "
            "their tails sit, and separation powers of high-level observables. Writes "
            "report.md, metrics.json and figures/*.png into the output directory."
        ),
    )
    parser.add_argument("--truth", required=True, metavar="A.h5", help="reference sample")
    parser.add_argument("--generated", required=True, metavar="B.h5", help="generated sample")
    parser.add_argument("--kind", choices=("events", "jets", "showers"),
                        help="sample kind (default: detected from the files' datasets)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="report directory")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report")
    parser.add_argument("--epochs", type=int, help="training epochs (default 50)")
    parser.add_argument("--layers", type=int, help="hidden layers (default: 5 events/jets, 3 showers)")
    parser.add_argument("--units", type=int, help="hidden units (default: 256 events/jets, 512 showers)")
    parser.add_argument("--batch-size", type=int, help="batch size (default 1024)")
    parser.add_argument("--learning-rate", type=float, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--ensemble", type=int, default=1, metavar="K",
                        help="classifiers averaged per group (default 1)")
    parser.add_argument("--calibration", choices=("temperature", "isotonic", "none"),
                        default="temperature", help="calibration fitted on validation (default temperature)")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="held-out fraction (default 0.2)")
    parser.add_argument("--validation-fraction", type=float, default=0.2,
                        help="fraction for early stopping and calibration (default 0.2)")
    parser.add_argument("--max-samples", type=int, metavar="N",
                        help="use at most N samples of each file (first N)")
    parser.add_argument("--observables", metavar="NAME,...",
                        help="histogram only these observables (default: all of the kind)")
    parser.add_argument("--particles", action="store_true",
                        help="jets: give the classifier the particles as well as jet features")
    parser.add_argument("--device", default="cpu", help="torch device for training (default cpu)")
    parser.add_argument("--threads", type=int,
                        help="CPU threads for training (default: torch's; 1 is often fastest "
                             "for these small networks, and on busy machines)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hepgen.metrics.evaluate import evaluate
    from hepgen.metrics.features import detect_kind, kind_module
    from hepgen.metrics.report import check_output, write_report

    # Everything that can be wrong with the request is checked before any training.
    check_output(args.output, args.overwrite)
    kinds = {role: detect_kind(path) for role, path in (("truth", args.truth),
                                                          ("generated", args.generated))}
    if kinds["truth"] != kinds["generated"]:
        raise ValueError(
            f"mixing sample kinds: --truth {args.truth} holds {kinds['truth']}, "
            f"--generated {args.generated} holds {kinds['generated']}"
        )
    kind = kinds["truth"]
    if args.kind is not None and args.kind != kind:
        raise ValueError(f"--kind {args.kind}: the files hold {kind} (from their datasets)")
    if args.particles and kind != "jets":
        raise ValueError(f"--particles: only for jets, the files hold {kind}")
    for flag, value in (("--max-samples", args.max_samples), ("--ensemble", args.ensemble),
                        ("--threads", args.threads), ("--epochs", args.epochs)):
        if value is not None and value < 1:
            raise ValueError(f"{flag}: expected a positive integer, got {value}")
    module = kind_module(kind)
    config = module.CLASSIFIER.with_(epochs=args.epochs, hidden_layers=args.layers,
                                     hidden_units=args.units, batch_size=args.batch_size,
                                     learning_rate=args.learning_rate, device=args.device,
                                     threads=args.threads)
    truth = _head(module.read(args.truth), args.max_samples)
    generated = _head(module.read(args.generated), args.max_samples)
    progress = not args.quiet
    evaluation = evaluate(truth, generated, kind, config=config, n_members=args.ensemble,
                          calibration=args.calibration, validation_fraction=args.validation_fraction,
                          test_fraction=args.test_fraction, seed=args.seed, progress=progress,
                          particles=args.particles, observables=_names(args.observables))
    command = _command_line(args)
    out = write_report(evaluation, args.output, overwrite=args.overwrite,
                       inputs={"truth": str(args.truth), "generated": str(args.generated)},
                       command=command)
    held = evaluation.held_out
    if not args.quiet:
        print(f"{kind}: AUC {held.auc:.4f} (null ±{held.auc_null_std:.4f}), JSD {held.jsd:.4f}, "
              f"mean w on generated {held.generated_weights.mean():.3f}; report in {out}")
    return 0


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, for the report."""
    words = ["hepgen", "evaluate", "--truth", args.truth, "--generated", args.generated,
             "-o", args.output]
    if args.kind:
        words += ["--kind", args.kind]
    for flag, value in (("--epochs", args.epochs), ("--layers", args.layers),
                        ("--units", args.units), ("--batch-size", args.batch_size),
                        ("--learning-rate", args.learning_rate), ("--max-samples", args.max_samples),
                        ("--threads", args.threads)):
        if value is not None:
            words += [flag, str(value)]
    words += ["--ensemble", str(args.ensemble), "--calibration", args.calibration,
              "--test-fraction", str(args.test_fraction),
              "--validation-fraction", str(args.validation_fraction), "--seed", str(args.seed)]
    if args.observables:
        words += ["--observables", args.observables]
    if args.particles:
        words.append("--particles")
    return " ".join(shlex.quote(str(w)) for w in words)


def _names(text: str | None):
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def _head(sample, n):
    """The first ``n`` samples of a data-class sample (all its per-sample arrays)."""
    if n is None or len(sample) <= n:
        return sample
    import dataclasses

    changes = {}
    for f in dataclasses.fields(sample):
        value = getattr(sample, f.name)
        if hasattr(value, "shape") and value.shape[:1] == (len(sample),):
            changes[f.name] = value[:n]
    return dataclasses.replace(sample, **changes)
