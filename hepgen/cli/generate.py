"""``hepgen generate calo|jets|events``: sample a trained generator into a data file.

Per kind: ``_add_KIND`` defines the options, ``run_KIND`` checks what argparse cannot,
calls ``_sample_KIND`` (the one function that calls the library) and reports. Every kind
goes the same way: ``hepgen.models.load`` gives the model, ``model.sample_chunks(n,
seed=...)`` yields chunks of ``--batch-size`` samples, and :func:`_stream` appends them to
the layout's writer (``hepgen.data.layouts``) as they come, so no run holds all its samples
in memory.

Under torchrun or SLURM's srun (the launcher's environment, :mod:`hepgen.distributed`), or
when ``FILE.parts`` holds parts of an interrupted run, the same chunks are split over the
ranks and joined into one file by :func:`hepgen.distributed.generate.run_in_parts`: the
file is the one a single process writes with the same seed and --batch-size. Each kind
describes its run as a :class:`Plan` so that both ways share it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
        "chunks of --batch-size showers (a scratch file renamed onto FILE when done; Ctrl-C "
        "keeps the finished chunks as FILE.partial, marked complete=False, and leaves FILE as "
        "it was; any other error leaves no file). Under torchrun the chunks are split over "
        "the ranks (docs/distributed.md).",
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
    with _job(args) as ctx:
        path = _execute(_plan_calo(args), args, ctx)
    if ctx.is_main:
        print(f"wrote {path} ({args.n} showers{_ranks(ctx)})")
    return 0


def _ranks(ctx) -> str:
    return f", {ctx.world_size} ranks" if ctx.distributed else ""


@dataclass
class Plan:
    """One run of a kind, however its chunks are split over processes.

    ``sizes``: every chunk's samples; ``chunks(indices)`` yields those chunks (all of them,
    in order, for None); ``run``: what determines the content (for the parts of a split
    run); ``writer(path, attrs, force)``: the layout's appendable writer; ``tally()``: a
    fresh :class:`Tally` of the totals recorded in the file, if the kind records any."""

    sizes: list[int]
    chunks: Callable[[list[int] | None], Iterator]
    run: dict
    attrs: dict
    writer: Callable
    unit: str
    tally: Callable[[], Tally] | None = None
    merge_totals: Callable[[list[dict]], dict] | None = None
    totals_keys: tuple[str, ...] = field(default_factory=tuple)


class Tally:
    """Totals over the chunks written: ``add(chunk)`` per chunk, ``totals()`` the attributes."""

    def add(self, chunk) -> None:
        pass

    def totals(self) -> dict:
        return {}


def _stream(writer, chunks, quiet: bool, total: int, unit: str, tally: Tally | None = None, every_chunk=False) -> Path:
    """Append each chunk to ``writer`` as it comes, with one progress bar, then set the
    attributes ``tally.totals()`` gives (after every chunk with ``every_chunk``, so that an
    interrupted part keeps them); returns the finished file. The writer keeps Ctrl-C's
    finished chunks (complete=False) and removes its partial file on any other error."""
    with writer, progress.bar(quiet, total=total, unit=unit) as bar:
        for chunk in chunks:
            if tally is not None:
                tally.add(chunk)
            writer.append(chunk)
            if tally is not None and every_chunk:
                writer.set_attrs(tally.totals())
            bar.update(len(chunk))
        if tally is not None:
            writer.set_attrs(tally.totals())
    return writer.path


@contextlib.contextmanager
def _job(args: argparse.Namespace):
    """This process's place in the job the launcher describes (one process without one), through
    the one job wrapper of all commands (``hepgen.distributed.entry.job``: joins, names the
    failing rank, leaves); ``args.device`` becomes this rank's device (cuda:LOCAL_RANK for
    --device cuda)."""
    from hepgen.distributed.entry import job

    wants_cuda = str(args.device).startswith("cuda")
    with job(args.device if wants_cuda else "cpu") as ctx:
        if ctx.distributed and wants_cuda:
            args.device = str(ctx.device)
        yield ctx


def _execute(plan: Plan, args: argparse.Namespace, ctx) -> Path:
    """Write the plan's file: straight to --output with one process, or split over the ranks."""
    from hepgen.distributed.generate import parts_dir, run_in_parts

    if not ctx.distributed and not parts_dir(args.output).exists():
        writer = plan.writer(args.output, plan.attrs, args.force)
        tally = plan.tally() if plan.tally else None
        return _stream(writer, plan.chunks(None), args.quiet, sum(plan.sizes), plan.unit, tally)

    def write_part(path, indices, extra):
        writer = plan.writer(path, {**plan.attrs, **extra}, False)
        tally = plan.tally() if plan.tally else None
        total = sum(plan.sizes[k] for k in indices)
        # One bar, rank 0's: several bars on one terminal overwrite each other.
        _stream(writer, plan.chunks(indices), args.quiet or not ctx.is_main, total, plan.unit, tally, every_chunk=True)

    outcome = run_in_parts(
        args.output,
        run=plan.run,
        sizes=plan.sizes,
        write_part=write_part,
        force=args.force,
        merge_totals=plan.merge_totals,
        totals_keys=plan.totals_keys,
        log=(lambda text: print(text, file=sys.stderr)) if ctx.is_main else (lambda text: None),
    )
    return outcome.path


def _chunk_sizes(n: int, chunk_size: int) -> list[int]:
    return [min(chunk_size, n - start) for start in range(0, n, chunk_size)]


def _model_identity(spec, kind: str) -> dict:
    """The checkpoint a run samples, by name and content (a retrained file is another run)."""
    from hepgen.models.registry import pretrained_path

    path = Path(spec)
    if not path.is_file():
        path = pretrained_path(str(spec), kind) or path
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return {"model": str(spec), "model_sha256": digest}


def _run_identity(args: argparse.Namespace, kind: str, **settings) -> dict:
    from hepgen import __version__

    return {
        "command": f"generate {args.kind}",
        **_model_identity(args.model or "pretrained", kind),
        "n": args.n,
        "seed": args.seed,
        "chunk_size": args.batch_size,
        "device": str(args.device).split(":")[0],  # a GPU's samples differ from the CPU's in rounding
        "hepgen_version": __version__,
        **settings,
    }


def _plan_calo(args: argparse.Namespace) -> Plan:
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

    def chunks(indices):
        return model.sample_chunks(
            args.n, condition=condition, seed=args.seed, chunk_size=args.batch_size, chunks=indices
        )

    chunks(None)  # checks every argument before an output file is opened (chunks come lazily)
    attrs = {"generator": "hepgen CaloMan", "model": model_name, "seed": args.seed, "seeding": "per-chunk"}
    n_voxels = model.config.n_voxels
    return Plan(
        sizes=_chunk_sizes(args.n, args.batch_size),
        chunks=chunks,
        run=_run_identity(args, "showers", energy=args.energy),
        attrs=attrs,
        writer=lambda path, attrs, force: calochallenge.writer(path, n_voxels, attrs, force=force),
        unit="shower",
    )


# --------------------------------------------------------------------------- jets


def _add_jets(kinds) -> None:
    p = options.command(
        kinds,
        "jets",
        run=run_jets,
        help="jets from an EPiC-FM/EPiC-JeDi checkpoint (default: the shipped model)",
        description="Sample jets from an EPiC-FM or EPiC-JeDi checkpoint into a JetNet-layout "
        "HDF5 file (GeV), streamed in chunks of --batch-size jets (a scratch file renamed "
        "onto FILE when done; Ctrl-C keeps the finished chunks as FILE.partial, marked "
        "complete=False, and leaves FILE as it was; any other error leaves no file; under "
        "torchrun the chunks are split over the ranks). Without --model: "
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
    with _job(args) as ctx:
        plan = _plan_jets(args)
        _execute(plan, args, ctx)
    if ctx.is_main:
        a = plan.attrs
        sampler = f"{a['method']} x {a['steps']} steps"
        print(f"wrote {args.output} ({args.n} jets, {plan.run['model_kind']}, {sampler}{_ranks(ctx)})")
    return 0


def _plan_jets(args: argparse.Namespace) -> Plan:
    import hepgen.models
    from hepgen.data.layouts import jetnet
    from hepgen.models.epic.dynamics import nfe

    model = hepgen.models.load(args.model, args.device, kind="jets")
    cfg = model.config
    settings = model.sampler_settings(method=args.method, steps=args.steps)

    def chunks(indices):
        return model.sample_chunks(args.n, seed=args.seed, chunk_size=args.batch_size, chunks=indices, **settings)

    # sample_chunks checks n, the settings and the chunk size before the output file is
    # opened; a refused request leaves no file.
    chunks(None)
    attrs = {
        "generator": f"hepgen {cfg.model}",
        "model": str(args.model),
        "method": settings["method"],
        "steps": settings["steps"],
        "nfe": nfe(settings["method"], settings["steps"]) or -1,
        "seed": args.seed,
        "seeding": "per-chunk",
    }
    return Plan(
        sizes=_chunk_sizes(args.n, args.batch_size),
        chunks=chunks,
        run=_run_identity(args, "jets", model_kind=cfg.model, **settings),
        attrs=attrs,
        writer=lambda path, attrs, force: jetnet.writer(path, cfg.particles, attrs, force=force),
        unit="jet",
    )


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
        "(a scratch file renamed onto FILE when done; Ctrl-C keeps the finished chunks as "
        "FILE.partial, marked complete=False, and leaves FILE as it was; under torchrun the "
        "chunks are split over the ranks). "
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
    with _job(args) as ctx:
        plan = _plan_events(args)
        path = _execute(plan, args, ctx)
    if not ctx.is_main:
        return 0
    from hepgen.data._h5 import open_for_reading, read_attrs

    with open_for_reading(path) as file:
        totals = read_attrs(file)
    n_events, clipped = sum(plan.sizes), totals["clipped_pt"]
    # Split over ranks: the slowest part's wall time and the ranks' CPU time together.
    print(
        f"wrote {path} ({n_events} events, {args.ensemble} member(s){_ranks(ctx)}, "
        f"{totals['sampling_seconds']:.2f} s wall, {totals['sampling_cpu_seconds']:.2f} s CPU; "
        f"{1e5 * totals['sampling_seconds'] / n_events:.1f} s wall per 1e5 events)"
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


class _EventTally(Tally):
    """The events' totals: sampling time (from the first chunk asked for) and clipped pT."""

    def __init__(self):
        from hepgen.bench.timing import Stopwatch

        self.watch, self.clipped = Stopwatch(), 0

    def add(self, chunk) -> None:
        self.clipped += int(chunk.attrs.get("clipped_pt", 0))

    def totals(self) -> dict:
        took = self.watch.elapsed()
        return {"sampling_seconds": took.seconds, "sampling_cpu_seconds": took.cpu_seconds, "clipped_pt": self.clipped}


def _merge_event_totals(parts: list[dict]) -> dict:
    """A split run's totals: the slowest part's wall time, every part's CPU time and clipped pT."""
    return {
        "sampling_seconds": max(p.get("sampling_seconds", 0.0) for p in parts),
        "sampling_cpu_seconds": sum(p.get("sampling_cpu_seconds", 0.0) for p in parts),
        "clipped_pt": sum(int(p.get("clipped_pt", 0)) for p in parts),
    }


def _plan_events(args: argparse.Namespace) -> Plan:
    import hepgen.models
    from hepgen.data.layouts import zjets
    from hepgen.nn.bayesian import is_bayesian

    model = hepgen.models.load(args.model, args.device, kind="events")
    bayesian = is_bayesian(model)
    if args.ensemble > 1 and not bayesian:
        raise ValueError(f"--ensemble {args.ensemble}: {args.model} is not a Bayesian model (train with --bayesian)")
    # A Bayesian model: member k is the k-th weight draw from weight_seed (one network of the
    # ensemble; --ensemble 1 is one draw, not the mean weights), its noise from seed + k, so
    # the members are independent samples and each is split-invariant like any run.
    members = list(range(args.ensemble)) if bayesian else [None]
    per_member = _chunk_sizes(args.n, args.batch_size)

    def run(member, indices=None):
        settings = {} if member is None else {"member": member, "weight_seed": args.seed}
        return model.sample_chunks(
            args.n,
            seed=args.seed + (member or 0),
            chunk_size=args.batch_size,
            chunks=indices,
            **model.sampler_settings(**settings),
        )

    def chunks(indices):
        # Chunk g of the run is chunk g % C of member g // C (C chunks per member).
        if indices is None:
            indices = range(len(per_member) * len(members))
        for m, group in itertools.groupby(indices, key=lambda g: g // len(per_member)):
            yield from run(members[m], [g % len(per_member) for g in group])

    # Warm-up outside the timing: the first call pays one-off costs (kernel loading, allocator).
    model.sample(64, seed=0, **model.sampler_settings(**({"member": 0} if bayesian else {})))
    for member in members:
        run(member)  # every argument checked before the file is opened
    attrs = {
        "generator": f"hepgen {model.config.model}{' bayesian' if bayesian else ''}",
        "model": str(args.model),
        "seed": args.seed,
        "seeding": "per-chunk",
    }
    if bayesian:
        attrs["ensemble"] = args.ensemble
    return Plan(
        sizes=per_member * len(members),
        chunks=chunks,
        run=_run_identity(args, "events", ensemble=args.ensemble),
        attrs=attrs,
        writer=lambda path, attrs, force: zjets.writer(path, members=bayesian, attrs=attrs, force=force),
        unit="event",
        tally=_EventTally,
        merge_totals=_merge_event_totals,
        totals_keys=("sampling_seconds", "sampling_cpu_seconds", "clipped_pt"),
    )
