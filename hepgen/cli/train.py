"""``hepgen train calo|jets|events``: fit a generator to a data file and write one checkpoint.

Per kind: ``_add_KIND`` defines the options, ``run_KIND`` checks what argparse cannot,
calls ``_fit_KIND`` (the one function that calls the library) and reports.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hepgen.cli import options, progress


def register(subparsers) -> None:
    parser = options.command(
        subparsers,
        "train",
        help="train a generator (calo: CaloMan; jets: EPiC-FM/EPiC-JeDi; events: JetGPT, DDPM, CFM, INN) "
        "and save a checkpoint",
        description="Train a generative model on a data file; write one checkpoint file.",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    _add_calo(kinds)
    _add_jets(kinds)
    _add_events(kinds)


def _common(
    p: argparse.ArgumentParser,
    *,
    data_help: str,
    batch: int,
    lr: float,
    lr_help: str,
    what: str,
    old_lr=(),
    old_max=(),
    resumable: bool = False,
) -> None:
    p.add_argument("--data", required=True, metavar="FILE", help=data_help)
    options.output(
        p, kind="file", metavar="CKPT", help="checkpoint file to write", may_exist_with="resume" if resumable else None
    )
    options.batch_size(
        p, default=batch, help=f"{what} per optimizer step, all processes together (a multiple of their number)"
    )
    options.learning_rate(p, default=lr, help=lr_help, old=old_lr)
    p.add_argument(
        "--scale-lr",
        choices=("none", "linear", "sqrt"),
        default="none",
        help=f"scale --learning-rate by the global batch over {batch} (the default batch): "
        "none, linear (x B/B0) or sqrt (x sqrt(B/B0)); see docs/distributed.md",
    )
    p.set_defaults(reference_batch=batch)
    options.max_samples(p, what=what, old=old_max)
    p.add_argument(
        "--fit-rows",
        type=options.positive_int,
        default=200_000,
        metavar="N",
        help=f"fit the preprocessing on the first N {what} (every process alike; default 200000)",
    )
    options.seed(p)
    options.device(p)
    options.threads(p)
    options.quiet(p)


# --------------------------------------------------------------------------- calo


def _add_calo(kinds) -> None:
    p = options.command(
        kinds,
        "calo",
        run=run_calo,
        help="CaloMan on CaloChallenge dataset-1 photon showers",
        description="Train CaloMan: the VAE, then the latent flow, then the energy-per-layer "
        "flow. Writes one checkpoint file, rewritten atomically after every epoch of every phase "
        "with the training state (--resume continues it).",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run saved in --output (same --data, --batch-size, --epochs, --flow-epochs)",
    )
    _common(
        p,
        data_help="CaloChallenge-layout HDF5 file (MeV)",
        batch=256,
        lr=1e-3,
        lr_help="Adam learning rate",
        what="showers",
        resumable=True,
    )
    p.add_argument("--epochs", type=options.positive_int, default=100, help="epochs of the VAE phase")
    p.add_argument(
        "--flow-epochs", type=options.positive_int, metavar="N", help="epochs of each flow phase (default: --epochs)"
    )
    p.add_argument(
        "--until",
        type=options.positive_int,
        metavar="EPOCH",
        help="stop after this many epochs over all three phases (--epochs of the VAE, then --flow-epochs "
        "of each flow); the schedules stay those of the whole run, so --resume continues the same run",
    )
    p.add_argument(
        "--latent", type=options.positive_int, default=35, help="latent dimension (default 35, the paper's code)"
    )
    p.add_argument(
        "--hidden",
        type=options.positive_int,
        nargs="+",
        default=[512, 512, 512],
        metavar="H",
        help="hidden sizes of the VAE's encoder; the decoder mirrors them",
    )
    p.add_argument(
        "--description",
        default="",
        metavar="TEXT",
        help="what the training data is, stored in the checkpoint (e.g. 'GFlash photons, seed 1')",
    )


def run_calo(args: argparse.Namespace) -> int:
    from hepgen.distributed.entry import job, recorded

    with job(args.device) as ctx:
        if args.resume and not Path(args.output).is_file():
            raise FileNotFoundError(f"--resume: {args.output} does not exist")
        path, n_train, result = recorded(_fit_calo)(args, ctx)
        history = result.history
        if ctx.is_main:
            losses = ", ".join(f"{k} {v[-1]:.4g}" for k, v in history.items() if v)
            speeds = ", ".join(f"{k} {v:.0f}" for k, v in result.samples_per_second.items())
            print(
                f"wrote {path} ({n_train} showers, {result.epochs_done} epochs{_processes(ctx)}; "
                f"final losses: {losses}; showers/s: {speeds})"
            )
    return 0


def _shower_rows(args: argparse.Namespace):
    """The showers of --data as row ranges (each rank reads its shard), checked as the
    layout's reader checks them."""
    import numpy as np

    from hepgen.data.layouts import calochallenge
    from hepgen.data.layouts.calochallenge import ENERGY_KEY, SHOWER_KEY
    from hepgen.distributed import FileRows

    datasets = {"showers": SHOWER_KEY, "energies": ENERGY_KEY}

    def transform(arrays: dict) -> dict:
        if not np.all(np.isfinite(arrays["energies"])) or np.any(arrays["energies"] <= 0):
            raise ValueError(f"{args.data}: '{ENERGY_KEY}' must be finite and positive (MeV)")
        if not np.all(np.isfinite(arrays["showers"])):
            raise ValueError(f"{args.data}: '{SHOWER_KEY}' contains NaN or infinite values")
        calochallenge._check_units(args.data, arrays["energies"], arrays["showers"])  # the reader's MeV check
        return arrays

    rows = FileRows(
        args.data, datasets, limit=args.max_samples, transform=transform, nonnegative={"showers": "voxel energies"}
    )
    shapes = rows.shapes
    if len(shapes["showers"]) != 2 or shapes["energies"][1:] != (1,):
        raise ValueError(f"{args.data}: expected '{SHOWER_KEY}' (N, voxels) and '{ENERGY_KEY}' (N, 1), got {shapes}")
    return rows


def _fit_calo(args: argparse.Namespace, ctx):
    import hepgen.models
    from hepgen.data import CaloGeometry
    from hepgen.models.caloman import CaloManConfig, train_caloman
    from hepgen.models.checkpoint import Checkpoint

    out = Path(args.output)
    rows = _shower_rows(args)
    n_voxels = rows.shapes["showers"][1]
    geometry = {g.n_voxels: g for g in (CaloGeometry.photons(),)}.get(n_voxels)
    if geometry is None:
        raise ValueError(f"{args.data}: {n_voxels} voxels; CaloMan here supports dataset-1 photons (368)")
    model, resume = None, None
    if args.resume:
        model = hepgen.models.load(out, ctx.device, kind="showers")
        resume = Checkpoint.read(out).entries.get("train_state")
        if resume is None:
            raise ValueError(f"--resume: {out} holds no training state (written before hepgen trained calo resumably?)")
        if resume["phase"] == "layer_flow" and resume["epoch"] >= (args.flow_epochs or args.epochs):
            raise ValueError(f"--resume: {out} holds a finished run (all three phases)")
        config = model.config
        if config.n_voxels != n_voxels:
            raise ValueError(f"--resume: {out} models {config.n_voxels} voxels, the data give {n_voxels}")
    else:
        config = CaloManConfig(
            n_voxels=n_voxels,
            latent=args.latent,
            hidden=tuple(args.hidden),
            layer_sizes=tuple(layer.n_voxels for layer in geometry.layers),
        )
    # The run's settings (with the trainer's provenance: created, command, n_train, seed).
    extra = {
        "data": str(args.data),
        "n_train": int(rows.n),
        "epochs": args.epochs,
        "flow_epochs": args.flow_epochs or args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": _learning_rate(args),
        "processes": ctx.world_size,
        "data_description": args.description,
        "seed": args.seed,
    }

    def save(result):  # rank 0 only: the checkpoint, rewritten atomically
        extra["final_losses"] = {k: float(v[-1]) for k, v in result.history.items() if v}
        prov = {**result.model.provenance, **extra}
        return result.model.save(out, force=True, provenance=prov, train_state=result.train_state)

    result = train_caloman(
        None,
        None,
        config,
        epochs=args.epochs,
        flow_epochs=args.flow_epochs,
        batch_size=args.batch_size,
        lr=_learning_rate(args),
        seed=args.seed,
        device=ctx.device,
        progress=progress.over(args.quiet, "epoch"),
        rows=rows,
        fit_rows=args.fit_rows,
        on_epoch=save,
        resume=resume,
        model=model,
        until=args.until,
    )
    path = out
    if ctx.is_main:  # the final model (after the layer flow: in eval mode, on the CPU)
        path = save(result)
    return path, rows.n, result


# --------------------------------------------------------------------------- jets


def _add_jets(kinds) -> None:
    p = options.command(
        kinds,
        "jets",
        run=run_jets,
        help="EPiC-FM or EPiC-JeDi on JetNet-layout jets",
        description="Train EPiC-FM (flow matching) or EPiC-JeDi (score diffusion) on a "
        "JetNet-layout HDF5 file (e.g. from `hepgen data jets`). The checkpoint "
        "is rewritten atomically after every epoch, so an interrupted run leaves "
        "a usable, resumable checkpoint (--resume).",
    )
    p.add_argument("--resume", action="store_true", help="continue the run saved in --output (up to --epochs in all)")
    _common(
        p,
        data_help="JetNet-layout HDF5 file of training jets",
        batch=1024,
        lr=1e-3,
        lr_help="AdamW peak learning rate",
        what="jets",
        old_lr=("--lr",),
        old_max=("--max-jets",),
        resumable=True,
    )
    p.add_argument(
        "--model",
        choices=("epic-fm", "epic-jedi"),
        default="epic-fm",
        help="epic-fm: optimal-transport flow matching; epic-jedi: VP cosine score diffusion",
    )
    p.add_argument("--epochs", type=options.positive_int, default=100, help="epochs (in all, with --resume)")
    _until(p)
    p.add_argument(
        "--particles",
        type=options.positive_int,
        metavar="P",
        help="particle slots to model: the P highest-pT of each jet (default: all in the file)",
    )
    cond = p.add_mutually_exclusive_group()
    cond.add_argument(
        "--conditional",
        dest="conditional",
        action="store_true",
        default=True,
        help="condition on jet pT and mass (the default)",
    )
    cond.add_argument("--unconditional", dest="conditional", action="store_false", help="no conditioning")
    p.add_argument("--hidden", type=options.positive_int, default=128, help="particle features per EPiC layer")
    p.add_argument("--latent", type=options.positive_int, default=10, help="global vector size")
    p.add_argument("--layers", type=options.positive_int, default=6, help="EPiC layers")
    p.add_argument(
        "--slim",
        action="store_true",
        help="drop the training state from the final checkpoint (smaller; cannot be resumed)",
    )


def run_jets(args: argparse.Namespace) -> int:
    from hepgen.distributed.entry import job, recorded

    with job(args.device) as ctx:
        if args.resume and not Path(args.output).is_file():
            raise FileNotFoundError(f"--resume: {args.output} does not exist")
        config, n_train, P, state = recorded(_fit_jets)(args, ctx)
        if ctx.is_main:
            losses = " ".join(f"{v:.4g}" for v in state.history[-5:])
            print(
                f"wrote {args.output} ({config.model}, {n_train} jets x {P} particles, {state.epoch} epochs"
                f"{_processes(ctx)}, {state.samples_per_second:.0f} jets/s; last losses: {losses})"
            )
    return 0


def _until(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--until",
        type=options.positive_int,
        metavar="EPOCH",
        help="stop after this epoch; the learning-rate schedule stays that of --epochs, so --resume "
        "continues the same run (batch jobs with a time limit)",
    )


def _learning_rate(args: argparse.Namespace) -> float:
    from hepgen.distributed.lr import scaled_learning_rate

    return scaled_learning_rate(args.learning_rate, args.batch_size, args.reference_batch, args.scale_lr)


def _processes(ctx) -> str:
    return f", {ctx.world_size} processes" if ctx.distributed else ""


def _jet_rows(args: argparse.Namespace):
    """The training jets as row ranges of --data (each rank reads its shard), with the
    particle slots cut to --particles and N recounted from the mask."""
    import numpy as np

    from hepgen.data.layouts.jetnet import JET_KEY, MAX_JET_PT_GEV, PARTICLE_KEY
    from hepgen.distributed import FileRows

    datasets = {"particles": PARTICLE_KEY, "jets": JET_KEY}
    shapes = FileRows(args.data, datasets, limit=args.max_samples).shapes
    if len(shapes["particles"]) != 3 or shapes["particles"][2] != 4 or shapes["jets"][1:] != (4,):
        raise ValueError(f"{args.data}: expected '{PARTICLE_KEY}' (N, P, 4) and '{JET_KEY}' (N, 4), got {shapes}")
    slots = shapes["particles"][1]
    P = args.particles or slots
    if P > slots:
        raise ValueError(f"--particles {P}: {args.data} has only {slots} particle slots")

    def transform(arrays: dict) -> dict:
        particles = np.asarray(arrays["particles"][:, :P], dtype=np.float32)  # highest-pT particles first
        jets = np.array(arrays["jets"], dtype=np.float32)
        mask = particles[..., 3]
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError(f"{args.data}: '{PARTICLE_KEY}'[..., 3] must be a 0/1 mask")
        if len(jets) and np.nanmax(jets[:, 0]) > MAX_JET_PT_GEV:
            raise ValueError(f"{args.data}: '{JET_KEY}' pT reaches {np.nanmax(jets[:, 0]):.4g}, expected GeV")
        jets[:, 3] = (mask > 0.5).sum(1)
        if (jets[:, 3] < 1).any():
            raise ValueError(f"{args.data}: {int((jets[:, 3] < 1).sum())} jets have no particles")
        return {"particles": particles, "jets": jets}

    return FileRows(args.data, datasets, limit=args.max_samples, transform=transform), P


def _fit_jets(args: argparse.Namespace, ctx):
    import hepgen.models
    from hepgen.models.epic import (
        EPiCConfig,
        TrainSettings,
        read_train_state,
        train_epic,
    )

    out = Path(args.output)
    rows, P = _jet_rows(args)
    settings = TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=_learning_rate(args),
        seed=args.seed,
        fit_rows=args.fit_rows,
    )
    model, resume = None, None
    if args.resume:
        model = hepgen.models.load(out, ctx.device, kind="jets")
        resume = read_train_state(out)
        if resume is None:
            raise ValueError(f"--resume: {out} holds no training state (written with --slim?)")
        config = model.config
        if config.particles != P:
            raise ValueError(f"--resume: {out} models {config.particles} particles, the data give {P}")
        if resume["epoch"] >= args.epochs:
            raise ValueError(f"--resume: {out} already has {resume['epoch']} epochs; ask for more with --epochs")
    else:
        config = EPiCConfig(
            model=args.model,
            particles=P,
            conditional=args.conditional,
            hidden=args.hidden,
            latent=args.latent,
            layers=args.layers,
        )
    # The checkpoint's record keeps the key names of earlier releases ("lr", "max_jets");
    # "created" and "command" come from hepgen.models.provenance.
    extra = {
        **hepgen.models.provenance(),
        "data": str(args.data),
        "n_train": int(rows.n),
        "seed": args.seed,
        "processes": ctx.world_size,
        "settings": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": _learning_rate(args),
            "lr_scaling": args.scale_lr,
            "max_jets": args.max_samples,
        },
    }

    def on_epoch(state):  # rank 0 only (train_epic calls it there)
        extra.update(epochs=state.epoch, losses=[float(v) for v in state.history])
        state.sampling_model().save(out, force=True, provenance=extra, train_state=state.state_dict())

    bars = progress.over(args.quiet, "epoch")
    state = train_epic(
        None,
        None,
        config,
        settings,
        device=ctx.device,
        progress=None if bars is None else (lambda it: bars(it, f"train {config.model}")),
        on_epoch=on_epoch,
        resume=resume,
        model=model,
        rows=rows,
        until=args.until,
    )
    if args.slim and ctx.is_main:
        state.sampling_model().save(out, force=True, provenance=extra)
    return config, rows.n, P, state


# --------------------------------------------------------------------------- events


def _add_events(kinds) -> None:
    from hepgen.models.events.config import MODELS  # a plain tuple: no torch

    p = options.command(
        kinds,
        "events",
        run=run_events,
        help="JetGPT, DDPM, CFM or the spline INN on Z+jets events",
        description="Train an event generator on a Z(->mumu)+jets file (`hepgen data events`): "
        "one network for 1, 2 and 3 jets (the INN: one flow per multiplicity). "
        "Writes one checkpoint with the config, weights and preprocessing, rewritten atomically "
        "after every epoch with the training state (--resume continues it).",
    )
    p.add_argument("--resume", action="store_true", help="continue the run saved in --output (up to --epochs in all)")
    p.add_argument("--model", choices=MODELS, help="architecture (required unless --resume)")
    _common(
        p,
        data_help="event file from `hepgen data events` (GeV)",
        batch=1024,
        lr=1e-3,
        lr_help="Adam learning rate, cosine-decayed to 0",
        what="events",
        old_max=("--max-events",),
        resumable=True,
    )
    p.add_argument(
        "--bayesian",
        action="store_true",
        help="mean-field Gaussian weights, KL / N_train added to the loss (sample with --ensemble)",
    )
    p.add_argument("--epochs", type=options.positive_int, default=50, help="epochs (in all, with --resume)")
    _until(p)
    p.add_argument("--hidden", type=options.positive_int, default=256, help="hidden width")
    p.add_argument(
        "--layers",
        type=options.positive_int,
        default=6,
        help="residual blocks (DDPM, CFM), coupling layers (INN), transformer blocks (JetGPT)",
    )
    p.add_argument("--timesteps", type=options.positive_int, default=1000, help="DDPM diffusion steps")
    options.method(
        p,
        default="midpoint",
        old=("--ode-method",),
        help="CFM sampling, stored in the checkpoint: fixed-grid method of hepgen.ode: euler, midpoint, heun, rk4",
    )
    options.steps(p, default=50, old=("--ode-steps",), help="CFM sampling, stored in the checkpoint: ODE steps")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="architecture-specific setting (VALUE as JSON, else a string), e.g. "
        "sampler=ddim sample_steps=100 for DDPM; repeatable",
    )
    p.add_argument(
        "--validation-fraction",
        type=options.float_in(0, 1, high_open=True),
        default=0.1,
        metavar="F",
        help="share of the events held out for the validation loss",
    )
    p.add_argument(
        "--patience",
        type=options.positive_int,
        metavar="EPOCHS",
        help="stop when the validation loss has not improved for EPOCHS epochs; the checkpoint then "
        "holds the best epoch's weights (default: train all --epochs)",
    )


def _key_values(items: list[str]) -> dict:
    import json

    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--option expects KEY=VALUE, got {item!r}")
        try:
            values[key] = json.loads(value)
        except json.JSONDecodeError:
            values[key] = value
    return values


def run_events(args: argparse.Namespace) -> int:
    from hepgen.distributed.entry import job, recorded

    with job(args.device) as ctx:
        if args.resume and not Path(args.output).is_file():
            raise FileNotFoundError(f"--resume: {args.output} does not exist")
        path, config, result, final = recorded(_fit_events)(args, ctx)
        if ctx.is_main:
            losses = ", ".join(f"{k} {v:.4g}" for k, v in final.items())
            print(
                f"wrote {path} ({config.model}{' bayesian' if config.bayesian else ''}, {result.n_train} training "
                f"events, {result.epoch} epochs{' (stopped early)' if result.stopped_early else ''}{_processes(ctx)}, "
                f"{result.samples_per_second:.0f} events/s, "
                f"{result.seconds:.1f} s wall, "
                f"{result.cpu_seconds:.1f} s CPU; final: {losses})"
            )
    return 0


def _event_rows(args: argparse.Namespace):
    """The events of --data as row ranges (each rank reads its shard), checked as the
    layout's reader checks them."""
    import numpy as np

    from hepgen.data.layouts.zjets import MAX_JETS, MAX_PT_GEV
    from hepgen.distributed import FileRows

    datasets = {"muons": "muons", "jets": "jets", "n_jets": "n_jets"}
    probe = FileRows(args.data, datasets, limit=args.max_samples)
    n = probe.shapes["muons"][0]
    want = {"muons": (n, 2, 4), "jets": (n, MAX_JETS, 4), "n_jets": (n,)}
    if probe.shapes != want:
        raise ValueError(f"{args.data}: expected datasets of shapes {want}, got {probe.shapes}")

    def transform(arrays: dict) -> dict:
        n_jets = arrays["n_jets"]
        if len(n_jets) and (n_jets.min() < 0 or n_jets.max() > MAX_JETS):
            raise ValueError(f"{args.data}: 'n_jets' must be in 0..{MAX_JETS}")
        for key in ("muons", "jets"):
            if len(n_jets) and np.nanmax(arrays[key][..., 0]) > MAX_PT_GEV:
                raise ValueError(f"{args.data}: '{key}' pT reaches {np.nanmax(arrays[key][..., 0]):.4g}, expected GeV")
        return arrays

    rows = FileRows(args.data, datasets, limit=args.max_samples, transform=transform)
    attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in probe.attrs.items()}
    return rows, attrs


def _fit_events(args: argparse.Namespace, ctx):
    import hepgen.models
    from hepgen.models.checkpoint import Checkpoint
    from hepgen.models.events import EventModelConfig, build_model
    from hepgen.models.events.train import train_events

    out = Path(args.output)
    model, resume = None, None
    if args.resume:
        model = hepgen.models.load(out, ctx.device, kind="events")
        resume = Checkpoint.read(out).entries.get("train_state")
        if resume is None:
            raise ValueError(
                f"--resume: {out} holds no training state (written before hepgen trained events resumably?)"
            )
        if resume["epoch"] >= args.epochs:
            raise ValueError(f"--resume: {out} already has {resume['epoch']} epochs; ask for more with --epochs")
        config = model.config
    else:
        if args.model is None:
            raise ValueError("--model is required (unless --resume)")
        config = EventModelConfig(
            model=args.model,
            bayesian=args.bayesian,
            hidden=args.hidden,
            layers=args.layers,
            timesteps=args.timesteps,
            ode_steps=args.steps,
            ode_method=args.method,
            options=_key_values(args.option),
        )
        build_model(config)  # a missing architecture or a bad option fails before the data is read
    rows, attrs = _event_rows(args)
    extra = {
        **hepgen.models.provenance(),
        "data": str(args.data),
        "epochs": args.epochs,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "learning_rate": _learning_rate(args),
        "processes": ctx.world_size,
    }

    def record(result) -> dict:
        final = {k: float(v[-1]) for k, v in result.history.items() if v}
        extra.update(
            n_train=result.n_train,
            epochs_done=result.epoch,
            train_seconds=result.seconds,
            train_cpu_seconds=result.cpu_seconds,
            final=final,
            history={k: [float(x) for x in v] for k, v in result.history.items()},
        )
        return final

    def on_epoch(result):  # rank 0 only: the checkpoint, rewritten atomically after each epoch
        record(result)
        result.model.save(
            out, force=True, provenance={**result.model.provenance, **extra}, train_state=result.train_state
        )

    result = train_events(
        None,
        config,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=_learning_rate(args),
        seed=args.seed,
        device=ctx.device,
        validation_fraction=args.validation_fraction,
        progress=progress.over(args.quiet, "epoch"),
        rows=rows,
        attrs=attrs,
        fit_rows=args.fit_rows,
        on_epoch=on_epoch,
        resume=resume,
        model=model,
        until=args.until,
        patience=args.patience,
    )
    final = record(result)
    if ctx.is_main and result.train_state:  # the final weights (with --patience, the best epoch's)
        extra["stopped_early"] = result.stopped_early
        prov = {**result.model.provenance, **extra}
        result.model.save(out, force=True, provenance=prov, train_state=result.train_state)
    return out, config, result, final
