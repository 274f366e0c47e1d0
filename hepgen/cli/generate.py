"""``hepgen generate calo|jets|events``: sample a trained generator into a data file.

Per kind: ``_add_KIND`` defines the options, ``run_KIND`` checks what argparse cannot,
calls ``_sample_KIND`` (the one function that calls the library) and reports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hepgen.cli import options, progress


def register(subparsers) -> None:
    parser = options.command(
        subparsers,
        "generate",
        help="sample a trained generator into a data file",
        description="Generate samples from a checkpoint written by `hepgen train` (or a model shipped with hepgen).",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    _add_calo(kinds)
    _add_jets(kinds)
    _add_events(kinds)


def _common(p: argparse.ArgumentParser, *, what: str, batch: int, file_help: str) -> None:
    options.count(p, what)
    options.output(p, kind="file", metavar="FILE", help=file_help)
    options.batch_size(p, default=batch, help=f"{what} per chunk")
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
        help="showers from a CaloMan checkpoint",
        description="Sample showers from a CaloMan checkpoint (default: the shipped "
        "pretrained model) into a CaloChallenge-layout HDF5 file (MeV). The "
        "file appears only when complete.",
    )
    p.add_argument(
        "--model",
        metavar="CKPT",
        help="checkpoint from `hepgen train calo` (default: the pretrained model shipped with "
        "hepgen, trained on GFlash-style photon showers, not Geant4; see docs/caloman.md)",
    )
    _common(p, what="showers", batch=10_000, file_help="HDF5 file to write (CaloChallenge layout, MeV)")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--energy", type=options.positive_float, metavar="E_MeV", help="one incident energy (MeV) for all showers"
    )
    which.add_argument(
        "--energies",
        choices=("all",),
        default="all",
        help="'all': drawn uniformly from dataset 1's 15 energies within the model's training range (the default)",
    )


def run_calo(args: argparse.Namespace) -> int:
    path = _sample_calo(args)
    print(f"wrote {path} ({args.n} showers)")
    return 0


def _sample_calo(args: argparse.Namespace) -> Path:
    import numpy as np
    import torch

    from hepgen.data import DATASET1_ENERGIES_MEV, ShowerSample, write_showers
    from hepgen.models.caloman import load_checkpoint
    from hepgen.models.caloman.pretrained import PRETRAINED_PATH, load_pretrained

    if args.model is None:
        model, _ = load_pretrained(args.device)
        model_name = str(PRETRAINED_PATH)
    else:
        model, _ = load_checkpoint(args.model, args.device)
        model_name = str(args.model)
    rng = np.random.default_rng(args.seed)
    if args.energy is not None:
        energies = np.full(args.n, args.energy)
    else:
        lo, hi = (10 ** model.preprocessing.log_e_range.cpu().numpy()).tolist()
        allowed = [e for e in DATASET1_ENERGIES_MEV if lo * (1 - 1e-6) <= e <= hi * (1 + 1e-6)]
        if not allowed:
            raise ValueError(
                f"{model_name}: trained on {lo:.4g}-{hi:.4g} MeV, which holds none of "
                "dataset 1's energies; use --energy"
            )
        energies = rng.choice(np.asarray(allowed), size=args.n)
    torch.manual_seed(args.seed)
    showers = np.empty((args.n, model.config.n_voxels), dtype=np.float32)
    with progress.bar(args.quiet, total=args.n, unit="shower") as bar:
        # One call per chunk, in order: the same random numbers as one call for all of them.
        for start in range(0, args.n, args.batch_size):
            stop = min(start + args.batch_size, args.n)
            model.sample(energies[start:stop], batch_size=args.batch_size, out=showers[start:stop])
            bar.update(stop - start)
    sample = ShowerSample(energies[:, None].astype(np.float32), showers)
    return write_showers(
        args.output,
        sample,
        attrs={"generator": "hepgen CaloMan", "model": model_name, "seed": args.seed},
        force=args.force,
    )


# --------------------------------------------------------------------------- jets


def _add_jets(kinds) -> None:
    p = options.command(
        kinds,
        "jets",
        run=run_jets,
        help="jets from an EPiC-FM/EPiC-JeDi checkpoint (default: the shipped model)",
        description="Sample jets from an EPiC-FM or EPiC-JeDi checkpoint into a JetNet-layout "
        "HDF5 file (GeV), streamed in chunks of --batch-size jets (written to "
        "FILE.partial and renamed when done; Ctrl-C keeps the finished chunks, "
        "marked complete=False; any other error leaves no file). Without --model: "
        "the shipped EPiC-FM for Pythia top jets with 30 particles.",
    )
    p.add_argument(
        "--model", default="pretrained", metavar="CKPT", help="checkpoint from `hepgen train jets`, or 'pretrained'"
    )
    _common(p, what="jets", batch=1024, file_help="HDF5 file to write (JetNet layout)")
    options.method(
        p,
        help="sampler: euler, midpoint, heun, rk4, rk4_38, dopri5 (ODE); EPiC-JeDi also em "
        "(Euler-Maruyama), ddim (default: midpoint for EPiC-FM, em for EPiC-JeDi)",
    )
    options.steps(
        p,
        help="solver steps; network evaluations = steps x stages (default: 100 for EPiC-FM = "
        "200 midpoint evaluations; 200 for EPiC-JeDi; ignored by dopri5)",
    )


def run_jets(args: argparse.Namespace) -> int:
    model_kind, method, steps = _sample_jets(args)
    print(f"wrote {args.output} ({args.n} jets, {model_kind}, {method} x {steps} steps)")
    return 0


def _sample_jets(args: argparse.Namespace):
    import torch

    from hepgen.data.jet_chunks import write_jet_chunks
    from hepgen.models.epic import load
    from hepgen.models.epic.dynamics import nfe
    from hepgen.models.epic.model import DEFAULT_METHOD, DEFAULT_STEPS

    model = load(args.model, args.device)
    cfg = model.config
    method = DEFAULT_METHOD[cfg.model] if args.method is None else args.method
    steps = DEFAULT_STEPS[cfg.model] if args.steps is None else args.steps
    attrs = {
        "generator": f"hepgen {cfg.model}",
        "model": str(args.model),
        "method": method,
        "steps": steps,
        "nfe": nfe(method, steps) or -1,
        "seed": args.seed,
    }
    generator = torch.Generator().manual_seed(args.seed)
    with progress.bar(args.quiet, total=args.n, unit="jet") as bar:
        # sample_chunks checks n, steps, method and the batch size before the first chunk;
        # a refused request leaves no file (write_jet_chunks removes its partial file).
        chunks = model.sample_chunks(
            args.n, steps, method, args.batch_size, generator, args.device, progress=bar.update
        )
        write_jet_chunks(args.output, chunks, cfg.particles, attrs, force=args.force)
    return cfg.model, method, steps


# --------------------------------------------------------------------------- events


def _add_events(kinds) -> None:
    p = options.command(
        kinds,
        "events",
        run=run_events,
        help="Z+jets events from an event-generator checkpoint",
        description="Sample events from a checkpoint of `hepgen train events` into an event "
        "file readable by hepgen.data.read_events (GeV; plus a 'member' dataset: "
        "the ensemble member of each event). The file appears only when complete. "
        "With --truth and --plots, also writes truth-vs-model histograms.",
    )
    p.add_argument("--model", required=True, metavar="CKPT", help="checkpoint from `hepgen train events`")
    _common(p, what="events", batch=10_000, file_help="HDF5 event file to write")
    p.add_argument(
        "--ensemble",
        type=options.positive_int,
        default=1,
        metavar="K",
        help="Bayesian models: K weight draws, n events each",
    )
    options.truth(p, required=False, help="event file to compare with (needs --plots)")
    p.add_argument("--plots", metavar="DIR", help="write truth-vs-model PNGs here (needs --truth)")
    p.add_argument(
        "--observables",
        metavar="NAME,...",
        help="plot only these (default: m_mumu, pt/eta of mu1 mu2 j1 j2 j3, dr_j1j2 dr_j1j3 dr_j2j3)",
    )


def observables(text: str | None) -> tuple[str, ...]:
    """``--observables NAME,...`` of the event plots, checked against the plotted ones."""
    from hepgen.models.events.observables import PLOTTED

    if text is None:
        return PLOTTED
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in PLOTTED]
    if unknown or not names:
        raise ValueError(f"--observables: unknown {unknown or text!r}; choose from {', '.join(PLOTTED)}")
    return names


def run_events(args: argparse.Namespace) -> int:
    if (args.truth is None) != (args.plots is None):
        raise ValueError("--truth and --plots go together")
    names = observables(args.observables)
    if args.truth is not None and not Path(args.truth).is_file():
        raise FileNotFoundError(f"--truth {args.truth}: no such file")
    path, n_events, took, clipped, sample, members = _sample_events(args)
    print(
        f"wrote {path} ({n_events} events, {args.ensemble} member(s), {took.seconds:.2f} s wall, "
        f"{took.cpu_seconds:.2f} s CPU; {1e5 * took.seconds / n_events:.1f} s wall per 1e5 events)"
    )
    if clipped:
        from hepgen.models.events.vectors import BEAM_ENERGY_GEV

        print(
            f"warning: {clipped} generated objects had pT above the beam energy "
            f"({BEAM_ENERGY_GEV:g} GeV) and were set to it: the model is poorly trained",
            file=sys.stderr,
        )
    if args.plots:
        from hepgen.data import read_events
        from hepgen.models.events.plots import write_plots

        written = write_plots(
            read_events(args.truth), {Path(args.model).stem: (sample, members)}, args.plots, names=names
        )
        print(f"wrote {len(written)} plots to {args.plots}")
    return 0


def _sample_events(args: argparse.Namespace):
    import numpy as np
    import torch

    from hepgen.bench.timing import timed
    from hepgen.models.events.checkpoint import load_checkpoint
    from hepgen.models.events.files import write_generated
    from hepgen.models.events.generate import generate_events
    from hepgen.nn.bayesian import is_bayesian

    model, preprocessing, _ = load_checkpoint(args.model, args.device)
    if args.ensemble > 1 and not is_bayesian(model):
        raise ValueError(f"--ensemble {args.ensemble}: {args.model} is not a Bayesian model (train with --bayesian)")

    # Warm-up outside the timing: the first call pays one-off costs (kernel loading, allocator).
    with torch.no_grad():
        model.sample(preprocessing.draw_multiplicities(64, np.random.default_rng(0)))
    torch.manual_seed(args.seed)
    (sample, members), took = timed(
        lambda: generate_events(
            model,
            preprocessing,
            args.n,
            ensemble=args.ensemble,
            batch_size=args.batch_size,
            seed=args.seed,
            progress=progress.over(args.quiet, "chunk"),
        )
    )
    clipped = int(sample.attrs.get("clipped_pt", 0))
    path = write_generated(
        args.output,
        sample,
        members,
        attrs={
            "generator": f"hepgen {model.config.model}{' bayesian' if is_bayesian(model) else ''}",
            "model": str(args.model),
            "seed": args.seed,
            "sampling_seconds": took.seconds,
            "sampling_cpu_seconds": took.cpu_seconds,
            "clipped_pt": clipped,
        },
        force=args.force,
    )
    return path, len(sample), took, clipped, sample, members
