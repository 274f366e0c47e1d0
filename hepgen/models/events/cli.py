"""``hepgen train events``, ``hepgen generate events`` and ``hepgen compare events``
(registered by hepgen.train_cli, hepgen.generate_cli and hepgen.compare_cli). torch and
h5py are imported when a command runs, not at --help."""

from __future__ import annotations

import argparse
import json
import sys

from hepgen.models.events.config import MODELS


def register_train(kinds) -> None:
    p = kinds.add_parser("events", help="JetGPT, DDPM, CFM or the spline INN on Z+jets events",
                         description="Train an event generator on a Z(->mumu)+jets file (`hepgen data events`): "
                                     "one network for 1, 2 and 3 jets (the INN: one flow per multiplicity). "
                                     "Writes one checkpoint with the config, weights and preprocessing.")
    p.add_argument("--model", required=True, choices=MODELS, help="architecture")
    p.add_argument("--bayesian", action="store_true",
                   help="mean-field Gaussian weights, KL / N_train added to the loss (sample with --ensemble)")
    p.add_argument("--data", required=True, metavar="FILE", help="event file from `hepgen data events`")
    p.add_argument("-o", "--output", required=True, metavar="CKPT", help="checkpoint file to write")
    p.add_argument("--epochs", type=int, default=50, help="epochs (default 50)")
    p.add_argument("--batch-size", type=int, default=1024, help="batch size (default 1024)")
    p.add_argument("--learning-rate", type=float, default=1e-3,
                   help="Adam learning rate, cosine-decayed to 0 (default 1e-3)")
    p.add_argument("--hidden", type=int, default=256, help="hidden width (default 256)")
    p.add_argument("--layers", type=int, default=6,
                   help="residual blocks (DDPM, CFM), coupling layers (INN), transformer blocks (JetGPT) "
                        "(default 6)")
    p.add_argument("--timesteps", type=int, default=1000, help="DDPM diffusion steps (default 1000)")
    p.add_argument("--ode-steps", type=int, default=50, help="CFM sampling: ODE steps (default 50)")
    p.add_argument("--ode-method", default="midpoint",
                   help="CFM sampling: fixed-grid method of hepgen.ode: euler, midpoint, heun, rk4 "
                        "(default midpoint)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="architecture-specific setting (VALUE as JSON, else a string), e.g. "
                        "sampler=ddim sample_steps=100 for DDPM; repeatable")
    p.add_argument("--max-events", type=int, metavar="N", help="use the first N events of the file only")
    p.add_argument("--validation-fraction", type=float, default=0.1,
                   help="held out for the validation loss (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--force", action="store_true", help="overwrite an existing checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run_train)


def register_generate(kinds) -> None:
    p = kinds.add_parser("events", help="Z+jets events from an event-generator checkpoint",
                         description="Sample events from a checkpoint of `hepgen train events` into an event "
                                     "file readable by hepgen.data.read_events (plus a 'member' dataset: the "
                                     "ensemble member of each event). The file appears only when complete. "
                                     "With --truth and --plots, also writes truth-vs-model histograms.")
    p.add_argument("--model", required=True, metavar="CKPT", help="checkpoint from `hepgen train events`")
    p.add_argument("-n", type=int, required=True, help="events per ensemble member")
    p.add_argument("--ensemble", type=int, default=1, metavar="K",
                   help="Bayesian models: K weight draws, n events each (default 1)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="HDF5 event file to write")
    p.add_argument("--truth", metavar="FILE", help="event file to compare with (needs --plots)")
    p.add_argument("--plots", metavar="DIR", help="write truth-vs-model PNGs here (needs --truth)")
    p.add_argument("--observables", metavar="NAME,...",
                   help="plot only these (default: m_mumu, pt/eta of mu1 mu2 j1 j2 j3, dr_j1j2 dr_j1j3 dr_j2j3)")
    p.add_argument("--batch-size", type=int, default=10_000, help="events per chunk (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run_generate)


def register_compare(kinds) -> None:
    p = kinds.add_parser("events", help="histograms and precision of generated Z+jets events vs truth",
                         description="Plot muon and jet pT and eta, M_mumu and Delta R_jj of truth and of each "
                                     "generated file (Bayesian ensembles as bands, ratio panels), and write "
                                     "precision.md / precision.json: the 1-Wasserstein distance of M_mumu and "
                                     "Delta R_j1j2 to truth, per ensemble member, beside the truth-vs-truth "
                                     "floor, with the training time (from the checkpoint, if present) and "
                                     "the sampling time per 10^5 events (from the file).")
    p.add_argument("generated", nargs="+", metavar="GEN.h5", help="generated event files")
    p.add_argument("--truth", required=True, metavar="FILE", help="held-out truth event file")
    p.add_argument("--labels", metavar="A,B,...", help="legend labels (default: the file names)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for PNGs and tables")
    p.add_argument("--observables", metavar="NAME,...",
                   help="plot only these (default: m_mumu, pt/eta of mu1 mu2 j1 j2 j3, dr_j1j2 dr_j1j3 dr_j2j3)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run_compare)


def _observables(text: str | None) -> tuple[str, ...]:
    from hepgen.models.events.observables import PLOTTED

    if text is None:
        return PLOTTED
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in PLOTTED]
    if unknown or not names:
        raise ValueError(f"--observables: unknown {unknown or text!r}; choose from {', '.join(PLOTTED)}")
    return names


def _positive(name: str, value) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")


def _parse_options(items: list[str]) -> dict:
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--option expects KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _progress(quiet: bool, unit: str):
    if quiet:
        return None
    from tqdm.auto import tqdm

    return lambda it, name: tqdm(it, desc=name, unit=unit, file=sys.stderr)


def run_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    for name in ("epochs", "batch_size", "hidden", "layers", "timesteps", "ode_steps", "max_events"):
        _positive("--" + name.replace("_", "-"), getattr(args, name))
    if Path(args.output).exists() and not args.force:
        raise FileExistsError(f"{args.output} exists (use --force to overwrite)")

    from hepgen.data.events import EventSample, read_events
    from hepgen.models.events.base import build_model
    from hepgen.models.events.checkpoint import save_checkpoint
    from hepgen.models.events.config import EventModelConfig
    from hepgen.models.events.train import train_events

    config = EventModelConfig(model=args.model, bayesian=args.bayesian, hidden=args.hidden, layers=args.layers,
                              timesteps=args.timesteps, ode_steps=args.ode_steps, ode_method=args.ode_method,
                              options=_parse_options(args.option))
    build_model(config)  # a missing architecture or a bad option fails before the data is read
    sample = read_events(args.data)
    if args.max_events:
        sample = EventSample(sample.muons[:args.max_events], sample.jets[:args.max_events],
                             sample.n_jets[:args.max_events], sample.attrs)
    result = train_events(sample, config, epochs=args.epochs, batch_size=args.batch_size, lr=args.learning_rate,
                          seed=args.seed, device=args.device, validation_fraction=args.validation_fraction,
                          progress=_progress(args.quiet, "epoch"))
    final = {k: float(v[-1]) for k, v in result.history.items() if v}
    extra = {"data": str(args.data), "n_train": result.n_train, "epochs": args.epochs, "seed": args.seed,
             "train_seconds": result.seconds, "final": final,
             "history": {k: [float(x) for x in v] for k, v in result.history.items()}}
    path = save_checkpoint(result.model, result.preprocessing, args.output, extra, force=args.force)
    losses = ", ".join(f"{k} {v:.4g}" for k, v in final.items())
    print(f"wrote {path} ({config.model}{' bayesian' if config.bayesian else ''}, {result.n_train} training "
          f"events, {result.seconds:.1f} s; final: {losses})")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    _positive("-n", args.n)
    _positive("--ensemble", args.ensemble)
    _positive("--batch-size", args.batch_size)
    if (args.truth is None) != (args.plots is None):
        raise ValueError("--truth and --plots go together")
    names = _observables(args.observables)
    if Path(args.output).exists() and not args.force:
        raise FileExistsError(f"{args.output} exists (use --force to overwrite)")
    if args.truth is not None and not Path(args.truth).is_file():
        raise FileNotFoundError(f"--truth {args.truth}: no such file")

    import torch

    from hepgen.models.events.checkpoint import load_checkpoint
    from hepgen.models.events.files import write_generated
    from hepgen.models.events.generate import generate_events
    from hepgen.nn.bayesian import is_bayesian

    model, preprocessing, _ = load_checkpoint(args.model, args.device)
    if args.ensemble > 1 and not is_bayesian(model):
        raise ValueError(f"--ensemble {args.ensemble}: {args.model} is not a Bayesian model (train with --bayesian)")
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    sample, members = generate_events(model, preprocessing, args.n, ensemble=args.ensemble,
                                      batch_size=args.batch_size, seed=args.seed,
                                      progress=_progress(args.quiet, "chunk"))
    seconds = time.perf_counter() - start
    path = write_generated(args.output, sample, members,
                           attrs={"generator": f"hepgen {model.config.model}"
                                               f"{' bayesian' if is_bayesian(model) else ''}",
                                  "model": str(args.model), "seed": args.seed, "sampling_seconds": seconds},
                           force=args.force)
    print(f"wrote {path} ({len(sample)} events, {args.ensemble} member(s), {seconds:.2f} s, "
          f"{1e5 * seconds / len(sample):.1f} s per 1e5 events)")
    if args.plots:
        from hepgen.data.events import read_events
        from hepgen.models.events.plots import write_plots

        written = write_plots(read_events(args.truth), {Path(args.model).stem: (sample, members)}, args.plots,
                              names=names)
        print(f"wrote {len(written)} plots to {args.plots}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    labels = args.labels.split(",") if args.labels else [Path(p).stem for p in args.generated]
    if len(labels) != len(args.generated):
        raise ValueError(f"--labels: {len(labels)} labels for {len(args.generated)} files")
    names = _observables(args.observables)
    for path in [args.truth, *args.generated]:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file")

    from hepgen.data.events import read_events
    from hepgen.models.events.files import read_generated, run_info
    from hepgen.models.events.plots import write_plots
    from hepgen.models.events.precision import precision, precision_table

    truth = read_events(args.truth)
    generated = {label: read_generated(path) for label, path in zip(labels, args.generated)}
    out = Path(args.output)
    written = write_plots(truth, generated, out, names=names, progress=_progress(args.quiet, "plot"))
    results = {label: precision(truth, sample, members) for label, (sample, members) in generated.items()}
    info = {label: run_info(path) for label, path in zip(labels, args.generated)}
    (out / "precision.json").write_text(json.dumps({label: {**results[label], "run": info[label]}
                                                     for label in labels}, indent=1))
    table = precision_table(results, info)
    (out / "precision.md").write_text(table)
    print(table, end="")
    print(f"wrote {len(written)} plots, precision.md and precision.json to {out}")
    return 0
