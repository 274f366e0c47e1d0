"""``hepgen evaluate``: classifier-based evaluation of a generated sample against truth."""

from __future__ import annotations

import argparse
import shlex

from hepgen.cli import options, progress


def register(subparsers) -> None:
    p = options.command(
        subparsers,
        "evaluate",
        run=run,
        help="compare a generated sample with truth through a classifier (AUC, JSD, weights)",
        description="Train a classifier to tell truth from generated samples; report the AUC, the JSD, the "
        "weights w = D/(1-D) ~ p_truth/p_generated on held-out samples, where their tails sit, "
        "and separation powers of high-level observables. Writes report.md, metrics.json and "
        "figures/*.png into the output directory.",
    )
    options.truth(p, required=True, help="reference sample (HDF5: events, jets or showers)")
    options.generated(p, help="generated sample, of the same kind")
    p.add_argument(
        "--kind", choices=("events", "jets", "showers"), help="sample kind (default: detected from the files' datasets)"
    )
    options.output(p, kind="directory", metavar="DIR", help="report directory", old_force=("--overwrite",))
    p.add_argument("--epochs", type=options.positive_int, metavar="N", help="training epochs (default 50)")
    p.add_argument(
        "--layers", type=options.positive_int, metavar="N", help="hidden layers (default: 5 events/jets, 3 showers)"
    )
    p.add_argument(
        "--units", type=options.positive_int, metavar="N", help="hidden units (default: 256 events/jets, 512 showers)"
    )
    options.batch_size(p, default=None, help="batch size (default 1024)")
    options.learning_rate(p, default=None, help="Adam learning rate (default 1e-3)")
    p.add_argument(
        "--ensemble", type=options.positive_int, default=1, metavar="K", help="classifiers averaged per group"
    )
    p.add_argument(
        "--calibration",
        choices=("temperature", "isotonic", "none"),
        default="temperature",
        help="calibration fitted on the validation part",
    )
    p.add_argument("--test-fraction", type=options.fraction, default=0.2, metavar="F", help="held-out share")
    p.add_argument(
        "--validation-fraction",
        type=options.fraction,
        default=0.2,
        metavar="F",
        help="share for early stopping and calibration",
    )
    options.max_samples(p, what="samples")
    p.add_argument(
        "--observables", metavar="NAME,...", help="histogram only these observables (default: all of the kind)"
    )
    p.add_argument(
        "--particles", action="store_true", help="jets: give the classifier the particles as well as jet features"
    )
    options.device(p, help="torch device for training, e.g. cpu, cuda")
    options.threads(
        p,
        help="CPU threads for training (default: torch's; 1 is often fastest for these "
        "small networks, and on busy machines)",
    )
    options.seed(p)
    options.quiet(p)


def run(args: argparse.Namespace) -> int:
    from hepgen.metrics.features import detect_kind

    # Everything that can be wrong with the request is checked before any training.
    kinds = {role: detect_kind(path) for role, path in (("truth", args.truth), ("generated", args.generated))}
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
    held, out = _evaluate(args, kind)
    print(
        f"{kind}: AUC {held.auc:.4f} (null ±{held.auc_null_std:.4f}), JSD {held.jsd:.4f}, "
        f"mean w on generated {held.generated_weights.mean():.3f}; report in {out}"
    )
    return 0


def _evaluate(args: argparse.Namespace, kind: str):
    from hepgen.metrics.evaluate import evaluate
    from hepgen.metrics.features import kind_module
    from hepgen.metrics.report import write_report

    module = kind_module(kind)
    config = module.CLASSIFIER.with_(
        epochs=args.epochs,
        hidden_layers=args.layers,
        hidden_units=args.units,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        device=args.device,
        threads=args.threads,
    )
    truth = head(module.read(args.truth), args.max_samples)
    generated = head(module.read(args.generated), args.max_samples)
    evaluation = evaluate(
        truth,
        generated,
        kind,
        config=config,
        n_members=args.ensemble,
        calibration=args.calibration,
        validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        progress=progress.enabled(args.quiet),
        particles=args.particles,
        observables=_names(args.observables),
    )
    out = write_report(
        evaluation,
        args.output,
        overwrite=args.force,
        inputs={"truth": str(args.truth), "generated": str(args.generated)},
        command=_command_line(args),
    )
    return evaluation.held_out, out


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, for the report."""
    words = ["hepgen", "evaluate", "--truth", args.truth, "--generated", args.generated, "-o", args.output]
    if args.kind:
        words += ["--kind", args.kind]
    for flag, value in (
        ("--epochs", args.epochs),
        ("--layers", args.layers),
        ("--units", args.units),
        ("--batch-size", args.batch_size),
        ("--learning-rate", args.learning_rate),
        ("--max-samples", args.max_samples),
        ("--threads", args.threads),
    ):
        if value is not None:
            words += [flag, str(value)]
    words += [
        "--ensemble",
        str(args.ensemble),
        "--calibration",
        args.calibration,
        "--test-fraction",
        str(args.test_fraction),
        "--validation-fraction",
        str(args.validation_fraction),
        "--seed",
        str(args.seed),
    ]
    if args.observables:
        words += ["--observables", args.observables]
    if args.particles:
        words.append("--particles")
    return " ".join(shlex.quote(str(w)) for w in words)


def _names(text: str | None):
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def head(sample, n: int | None):
    """The first ``n`` samples of a data-class sample (all its per-sample arrays): ``--max-samples``."""
    if n is None or len(sample) <= n:
        return sample
    import dataclasses

    changes = {}
    for f in dataclasses.fields(sample):
        value = getattr(sample, f.name)
        if hasattr(value, "shape") and value.shape[:1] == (len(sample),):
            changes[f.name] = value[:n]
    return dataclasses.replace(sample, **changes)
