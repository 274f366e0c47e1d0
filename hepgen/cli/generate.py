"""``hepgen generate calo|jets|events``: sample a trained generator into a data file.

Per kind: ``_add_KIND`` defines the options, ``run_KIND`` checks what argparse cannot,
calls ``_sample_KIND`` (the one function that calls the library) and reports. Every kind
goes the same way: ``hepgen.models.load`` gives the model, ``model.sample_chunks(n,
seed=...)`` yields chunks of ``--batch-size`` samples, and :func:`_stream` appends them to
the layout's writer (``hepgen.data.layouts``) as they come, so no run holds all its samples
in memory.
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
    options.seed(
        p,
        help="random seed: chunk k (samples k*N .. k*N+N-1, N = --batch-size) is generated from its own "
        "stream seeded from (seed, k), so a run is the same however its chunks are split (e.g. over processes)",
    )
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
        "pretrained model) into a CaloChallenge-layout HDF5 file (MeV), streamed in "
        "chunks of --batch-size showers (FILE.partial renamed when done; Ctrl-C keeps "
        "the finished chunks, marked complete=False; any other error leaves no file).",
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


def _stream(writer, chunks, quiet: bool, total: int, unit: str, on_chunk=None, totals=None) -> Path:
    """Append each chunk to ``writer`` as it comes (``on_chunk(chunk)`` first, if given),
    with one progress bar, then set the attributes ``totals()`` returns (if given); returns
    the finished file. The writer keeps Ctrl-C's finished chunks (complete=False) and
    removes its partial file on any other error."""
    with writer, progress.bar(quiet, total=total, unit=unit) as bar:
        for chunk in chunks:
            if on_chunk is not None:
                on_chunk(chunk)
            writer.append(chunk)
            bar.update(len(chunk))
        if totals is not None:
            writer.set_attrs(totals())
    return writer.path


def _sample_calo(args: argparse.Namespace) -> Path:
    import numpy as np

    import hepgen.models
    from hepgen.data.layouts import calochallenge

    model = hepgen.models.load(args.model or "pretrained-calo", args.device, kind="showers")
    # The file records the checkpoint file (the shipped one's without --model), as before.
    model_name = str(args.model or hepgen.models.list_pretrained()["pretrained-calo"][0])
    if args.energy is None and len(model.allowed_energies()) == 0:
        lo, hi = (10 ** model.preprocessing.log_e_range.cpu().double()).tolist()
        raise ValueError(
            f"{model_name}: trained on {lo:.4g}-{hi:.4g} MeV, which holds none of dataset 1's energies; use --energy"
        )
    # Without --energy the model draws each shower's energy from dataset 1's (its default condition).
    condition = None if args.energy is None else np.full(args.n, args.energy)
    # Checked here, before the output file is opened; generated lazily.
    chunks = model.sample_chunks(args.n, condition=condition, seed=args.seed, chunk_size=args.batch_size)
    attrs = {"generator": "hepgen CaloMan", "model": model_name, "seed": args.seed, "seeding": "per-chunk"}
    writer = calochallenge.writer(args.output, model.config.n_voxels, attrs, force=args.force)
    return _stream(writer, chunks, args.quiet, args.n, "shower")


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
    import hepgen.models
    from hepgen.data.layouts import jetnet
    from hepgen.models.epic.dynamics import nfe

    model = hepgen.models.load(args.model, args.device, kind="jets")
    cfg = model.config
    settings = model.sampler_settings(method=args.method, steps=args.steps)
    # sample_chunks checks n, the settings and the chunk size before the output file is
    # opened; a refused request leaves no file.
    chunks = model.sample_chunks(args.n, seed=args.seed, chunk_size=args.batch_size, **settings)
    attrs = {
        "generator": f"hepgen {cfg.model}",
        "model": str(args.model),
        "method": settings["method"],
        "steps": settings["steps"],
        "nfe": nfe(settings["method"], settings["steps"]) or -1,
        "seed": args.seed,
        "seeding": "per-chunk",
    }
    writer = jetnet.writer(args.output, cfg.particles, attrs, force=args.force)
    _stream(writer, chunks, args.quiet, args.n, "jet")
    return cfg.model, settings["method"], settings["steps"]


# --------------------------------------------------------------------------- events


def _add_events(kinds) -> None:
    p = options.command(
        kinds,
        "events",
        run=run_events,
        help="Z+jets events from an event-generator checkpoint",
        description="Sample events from a checkpoint of `hepgen train events` into an event "
        "file readable by hepgen.data.read_events (GeV; for a Bayesian model also a 'member' "
        "dataset: the ensemble member of each event), streamed in chunks of --batch-size events "
        "(FILE.partial renamed when done; Ctrl-C keeps the finished chunks, marked complete=False). "
        "With --truth and --plots, also writes truth-vs-model histograms.",
    )
    p.add_argument(
        "--model",
        default="pretrained",
        metavar="CKPT",
        help="checkpoint from `hepgen train events`, or 'pretrained' (default: the shipped CFM, docs/events.md)",
    )
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
    from hepgen.metrics.events_observables import PLOTTED

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
    path, n_events, took, clipped = _sample_events(args)
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
        from hepgen.metrics.events_plots import write_plots

        # Read back from the file: the samples were streamed to it, not kept in memory.
        generated = read_events(path)
        written = write_plots(
            read_events(args.truth), {Path(args.model).stem: (generated, generated.members)}, args.plots, names=names
        )
        print(f"wrote {len(written)} plots to {args.plots}")
    return 0


def _sample_events(args: argparse.Namespace):
    import itertools

    import hepgen.models
    from hepgen.bench.timing import Stopwatch
    from hepgen.data.layouts import zjets
    from hepgen.nn.bayesian import is_bayesian

    model = hepgen.models.load(args.model, args.device, kind="events")
    bayesian = is_bayesian(model)
    if args.ensemble > 1 and not bayesian:
        raise ValueError(f"--ensemble {args.ensemble}: {args.model} is not a Bayesian model (train with --bayesian)")
    # A Bayesian model: member k is the k-th weight draw from weight_seed (one network of the
    # ensemble; --ensemble 1 is one draw, not the mean weights), its noise from seed + k, so
    # the members are independent samples and each is split-invariant like any run.
    members = range(args.ensemble) if bayesian else [None]

    def run(member):
        settings = {} if member is None else {"member": member, "weight_seed": args.seed}
        return model.sample_chunks(
            args.n, seed=args.seed + (member or 0), chunk_size=args.batch_size, **model.sampler_settings(**settings)
        )

    # Warm-up outside the timing: the first call pays one-off costs (kernel loading, allocator).
    model.sample(64, seed=0, **model.sampler_settings(**({"member": 0} if bayesian else {})))
    runs = [run(member) for member in members]  # every argument checked before the file is opened
    attrs = {
        "generator": f"hepgen {model.config.model}{' bayesian' if bayesian else ''}",
        "model": str(args.model),
        "seed": args.seed,
        "seeding": "per-chunk",
    }
    if bayesian:
        attrs["ensemble"] = args.ensemble
    writer = zjets.writer(args.output, members=bayesian, attrs=attrs, force=args.force)
    record = {"clipped_pt": 0}

    def count_clipped(chunk):
        record["clipped_pt"] += int(chunk.attrs.get("clipped_pt", 0))

    def totals():
        took = record["took"] = watch.elapsed()
        return {
            "sampling_seconds": took.seconds,
            "sampling_cpu_seconds": took.cpu_seconds,
            "clipped_pt": record["clipped_pt"],
        }

    watch = Stopwatch()  # sampling and writing (the chunks are generated as they are written)
    path = _stream(
        writer,
        itertools.chain(*runs),
        args.quiet,
        args.n * len(members),
        "event",
        on_chunk=count_clipped,
        totals=totals,
    )
    return path, args.n * len(members), record["took"], record["clipped_pt"]
