"""``hepgen train jets`` and ``hepgen generate jets`` (registered by hepgen.train_cli and
hepgen.generate_cli). torch and h5py are imported when a command runs, not at --help."""

from __future__ import annotations

import argparse
import sys


def register_train(kinds) -> None:
    p = kinds.add_parser("jets", help="EPiC-FM or EPiC-JeDi on JetNet-layout jets",
                         description="Train EPiC-FM (flow matching) or EPiC-JeDi (score diffusion) on a "
                                     "JetNet-layout HDF5 file (e.g. from `hepgen data jets`). The checkpoint "
                                     "is rewritten atomically after every epoch, so an interrupted run leaves "
                                     "a usable, resumable checkpoint (--resume).")
    p.add_argument("--model", choices=("epic-fm", "epic-jedi"), default="epic-fm",
                   help="epic-fm: optimal-transport flow matching; epic-jedi: VP cosine score diffusion "
                        "(default epic-fm)")
    p.add_argument("--data", required=True, metavar="FILE", help="JetNet-layout HDF5 file of training jets")
    p.add_argument("-o", "--output", required=True, metavar="CKPT", help="checkpoint file to write")
    p.add_argument("--epochs", type=int, default=100, help="epochs (default 100)")
    p.add_argument("--batch-size", type=int, default=1024, help="jets per batch (default 1024, the paper's)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate (default 1e-3)")
    p.add_argument("--particles", type=int, metavar="P",
                   help="particle slots to model: the P highest-pT of each jet (default: all in the file)")
    cond = p.add_mutually_exclusive_group()
    cond.add_argument("--conditional", dest="conditional", action="store_true", default=True,
                      help="condition on jet pT and mass (default)")
    cond.add_argument("--unconditional", dest="conditional", action="store_false", help="no conditioning")
    p.add_argument("--hidden", type=int, default=128, help="particle features per EPiC layer (default 128)")
    p.add_argument("--latent", type=int, default=10, help="global vector size (default 10)")
    p.add_argument("--layers", type=int, default=6, help="EPiC layers (default 6)")
    p.add_argument("--max-jets", type=int, metavar="N", help="train on the first N jets only")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run saved in --output (up to --epochs in all)")
    p.add_argument("--slim", action="store_true",
                   help="drop the training state from the final checkpoint (smaller; cannot be resumed)")
    p.add_argument("--force", action="store_true", help="overwrite an existing checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_train)


def register_generate(kinds) -> None:
    p = kinds.add_parser("jets", help="jets from an EPiC-FM/EPiC-JeDi checkpoint (default: the shipped model)",
                         description="Sample jets from an EPiC-FM or EPiC-JeDi checkpoint into a JetNet-layout "
                                     "HDF5 file, streamed in chunks of --batch-size jets. The file appears "
                                     "under its name only when complete. Without --model: the shipped EPiC-FM "
                                     "for Pythia top jets with 30 particles.")
    p.add_argument("--model", default="pretrained", metavar="CKPT",
                   help="checkpoint from `hepgen train jets`, or 'pretrained' (default)")
    p.add_argument("-n", type=int, required=True, help="number of jets")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="HDF5 file to write")
    p.add_argument("--method", help="sampler: euler, midpoint, heun, rk4, rk4_38, dopri5 (ODE); EPiC-JeDi also "
                                    "em (Euler-Maruyama), ddim. Default: midpoint for EPiC-FM, em for EPiC-JeDi")
    p.add_argument("--steps", type=int, help="solver steps; network evaluations = steps x stages "
                                             "(default: 100 for EPiC-FM = 200 midpoint evaluations; 200 for "
                                             "EPiC-JeDi; ignored by dopri5)")
    p.add_argument("--batch-size", type=int, default=1024, help="jets per chunk (default 1024)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_generate)


def _positive(name: str, value) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")


def run_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    for name in ("epochs", "batch_size", "particles", "hidden", "latent", "layers", "max_jets"):
        _positive("--" + name.replace("_", "-"), getattr(args, name))
    if not args.lr > 0:
        raise ValueError(f"--lr must be positive, got {args.lr}")
    out = Path(args.output)
    if args.resume and not out.is_file():
        raise FileNotFoundError(f"--resume: {out} does not exist")
    if out.exists() and not (args.force or args.resume):
        raise FileExistsError(f"{out} exists (use --force to overwrite, --resume to continue it)")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out}: directory {out.parent} does not exist")

    from tqdm.auto import tqdm

    from hepgen.data import read_jets
    from hepgen.models.epic import EPiCConfig, TrainSettings, load_checkpoint, save_checkpoint, train_epic

    sample = read_jets(args.data)
    particles, jets = sample.particles, sample.jets.copy()
    if args.max_jets:
        particles, jets = particles[:args.max_jets], jets[:args.max_jets]
    P = args.particles or particles.shape[1]
    if P > particles.shape[1]:
        raise ValueError(f"--particles {P}: {args.data} has only {particles.shape[1]} particle slots")
    particles = particles[:, :P]  # JetNet files hold the highest-pT particles first
    jets[:, 3] = (particles[..., 3] > 0.5).sum(1)
    if (jets[:, 3] < 1).any():
        raise ValueError(f"{args.data}: {int((jets[:, 3] < 1).sum())} jets have no particles")
    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    model, resume = None, None
    if args.resume:
        model, _, resume = load_checkpoint(out, args.device, with_train_state=True)
        if resume is None:
            raise ValueError(f"--resume: {out} holds no training state (written with --slim?)")
        config = model.config
        if config.particles != P:
            raise ValueError(f"--resume: {out} models {config.particles} particles, the data give {P}")
        if resume["epoch"] >= args.epochs:
            raise ValueError(f"--resume: {out} already has {resume['epoch']} epochs; ask for more with --epochs")
    else:
        config = EPiCConfig(model=args.model, particles=P, conditional=args.conditional, hidden=args.hidden,
                            latent=args.latent, layers=args.layers)
    extra = {"data": str(args.data), "n_train": int(len(particles)), "seed": args.seed,
             "command": "hepgen " + " ".join(sys.argv[1:]) if sys.argv else ""}

    def on_epoch(state):
        extra.update(epochs=state.epoch, losses=[float(v) for v in state.history])
        save_checkpoint(state.sampling_model(), out, extra, train_state=state.state_dict(), force=True)

    progress = None if args.quiet else (lambda it: tqdm(it, desc=f"train {config.model}", unit="epoch",
                                                          initial=it.start, total=it.stop, file=sys.stderr))
    state = train_epic(particles, jets, config, settings, device=args.device, progress=progress,
                       on_epoch=on_epoch, resume=resume, model=model)
    if args.slim:
        save_checkpoint(state.sampling_model(), out, extra, force=True)
    losses = " ".join(f"{v:.4g}" for v in state.history[-5:])
    print(f"wrote {out} ({config.model}, {len(particles)} jets x {P} particles, {state.epoch} epochs; "
          f"last losses: {losses})")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    _positive("-n", args.n)
    _positive("--steps", args.steps)
    _positive("--batch-size", args.batch_size)
    if args.seed < 0:
        raise ValueError(f"--seed must be non-negative, got {args.seed}")

    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from hepgen.data._h5 import ChunkedWriter, output_path
    from hepgen.data.jets import JET_FEATURES, JET_KEY, PARTICLE_FEATURES, PARTICLE_KEY
    from hepgen.models.epic import load
    from hepgen.models.epic.dynamics import nfe
    from hepgen.models.epic.model import DEFAULT_METHOD, DEFAULT_STEPS

    output_path(args.output, args.force)  # fail before loading anything
    model = load(args.model, args.device)
    cfg = model.config
    method = args.method or DEFAULT_METHOD[cfg.model]
    steps = args.steps or DEFAULT_STEPS[cfg.model]
    model._check_sampling(args.n, steps, method, args.batch_size)
    P = cfg.particles
    layout = {PARTICLE_KEY: ((P, 4), np.float32, None), JET_KEY: ((4,), np.float32, "GeV")}
    attrs = {"format": "jetnet", "energy_unit": "GeV", "particle_feature_names": list(PARTICLE_FEATURES),
             "jet_feature_names": list(JET_FEATURES), "generator": f"hepgen {cfg.model}",
             "model": str(args.model), "method": method, "steps": steps, "nfe": nfe(method, steps) or -1,
             "seed": args.seed}
    generator = torch.Generator().manual_seed(args.seed)
    with tqdm(total=args.n, unit="jet", disable=args.quiet, file=sys.stderr) as bar, \
            ChunkedWriter(args.output, layout, attrs, force=args.force) as writer:
        for chunk in model.sample_chunks(args.n, steps, method, args.batch_size, generator, args.device):
            writer.append({PARTICLE_KEY: chunk.particles, JET_KEY: chunk.jets})
            bar.update(len(chunk))
    print(f"wrote {args.output} ({args.n} jets, {cfg.model}, {method} x {steps} steps)")
    return 0
