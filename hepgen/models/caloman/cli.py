"""``hepgen train calo`` and ``hepgen generate calo`` (registered by hepgen.train_cli and
hepgen.generate_cli). torch and h5py are imported when a command runs, not at --help."""

from __future__ import annotations

import argparse
import sys


def register_train(kinds) -> None:
    p = kinds.add_parser("calo", help="CaloMan on CaloChallenge dataset-1 photon showers",
                         description="Train CaloMan: the VAE, then the latent flow, then the energy-per-layer "
                                     "flow. Writes one checkpoint file.")
    p.add_argument("--data", required=True, metavar="FILE", help="CaloChallenge-layout HDF5 file (MeV)")
    p.add_argument("-o", "--output", required=True, metavar="CKPT", help="checkpoint file to write")
    p.add_argument("--epochs", type=int, default=100, help="epochs of each phase (default 100)")
    p.add_argument("--flow-epochs", type=int, help="epochs of each flow phase (default: --epochs)")
    p.add_argument("--batch-size", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--latent", type=int, default=35, help="latent dimension (default 35, the paper's code)")
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512, 512], metavar="H",
                   help="hidden sizes of the VAE's encoder (the decoder mirrors them; default 512 512 512)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--max-samples", type=int, metavar="N", help="train on the first N showers only")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--description", default="", metavar="TEXT",
                   help="what the training data is, stored in the checkpoint (e.g. 'GFlash photons, seed 1')")
    p.add_argument("--force", action="store_true", help="overwrite an existing checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run_train)


def register_generate(kinds) -> None:
    p = kinds.add_parser("calo", help="showers from a CaloMan checkpoint",
                         description="Sample showers from a CaloMan checkpoint (default: the shipped "
                                     "pretrained model) into a CaloChallenge-layout HDF5 file (MeV). The "
                                     "file appears only when complete.")
    p.add_argument("--model", metavar="CKPT",
                   help="checkpoint from `hepgen train calo` (default: the pretrained model shipped with "
                        "hepgen, trained on GFlash-style photon showers, not Geant4; see docs/caloman.md)")
    p.add_argument("-n", type=int, required=True, help="number of showers")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--energy", type=float, metavar="E_MeV", help="one incident energy (MeV) for all showers")
    which.add_argument("--energies", choices=("all",), default="all",
                       help="'all': drawn uniformly from dataset 1's 15 energies within the model's "
                            "training range (default)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="HDF5 file to write")
    p.add_argument("--batch-size", type=int, default=10_000, help="showers per chunk (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(run=run_generate)


def _positive(name: str, value) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")


def run_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    for name in ("epochs", "flow_epochs", "batch_size", "latent", "max_samples"):
        _positive("--" + name.replace("_", "-"), getattr(args, name))
    for h in args.hidden:
        _positive("--hidden", h)
    if Path(args.output).exists() and not args.force:
        raise FileExistsError(f"{args.output} exists (use --force to overwrite)")

    from tqdm.auto import tqdm

    from hepgen.data import CaloGeometry, read_showers
    from hepgen.models.caloman import CaloManConfig, save_checkpoint, train_caloman

    sample = read_showers(args.data)
    n_voxels = sample.showers.shape[1]
    geometry = {g.n_voxels: g for g in (CaloGeometry.photons(),)}.get(n_voxels)
    if geometry is None:
        raise ValueError(f"{args.data}: {n_voxels} voxels; CaloMan here supports dataset-1 photons (368)")
    showers, energies = sample.showers, sample.incident_energies
    if args.max_samples:
        showers, energies = showers[:args.max_samples], energies[:args.max_samples]
    config = CaloManConfig(n_voxels=n_voxels, latent=args.latent, hidden=tuple(args.hidden),
                           layer_sizes=tuple(layer.n_voxels for layer in geometry.layers))
    progress = None if args.quiet else (lambda it, name: tqdm(it, desc=name, unit="epoch", file=sys.stderr))
    result = train_caloman(showers, energies, config, epochs=args.epochs, flow_epochs=args.flow_epochs,
                           batch_size=args.batch_size, lr=args.learning_rate, seed=args.seed,
                           device=args.device, progress=progress)
    extra = {"data": str(args.data), "n_train": int(len(showers)), "epochs": args.epochs,
             "flow_epochs": args.flow_epochs or args.epochs, "batch_size": args.batch_size,
             "data_description": args.description,
             "seed": args.seed, "final_losses": {k: float(v[-1]) for k, v in result.history.items()}}
    path = save_checkpoint(result.model, args.output, extra, force=args.force)
    losses = ", ".join(f"{k} {v[-1]:.4g}" for k, v in result.history.items())
    print(f"wrote {path} ({len(showers)} showers; final losses: {losses})")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    _positive("-n", args.n)
    _positive("--batch-size", args.batch_size)
    if Path(args.output).exists() and not args.force:
        raise FileExistsError(f"{args.output} exists (use --force to overwrite)")
    if args.energy is not None and not args.energy > 0:
        raise ValueError(f"--energy must be a positive energy in MeV, got {args.energy}")

    import numpy as np
    import torch

    from hepgen.data import DATASET1_ENERGIES_MEV, ShowerSample, write_showers
    from hepgen.models.caloman import load_checkpoint
    from hepgen.models.caloman.pretrained import PRETRAINED_PATH, load_pretrained

    if args.model is None:
        model, extra = load_pretrained(args.device)
        args.model = str(PRETRAINED_PATH)
    else:
        model, extra = load_checkpoint(args.model, args.device)
    rng = np.random.default_rng(args.seed)
    if args.energy is not None:
        energies = np.full(args.n, args.energy)
    else:
        lo, hi = (10 ** model.preprocessing.log_e_range.cpu().numpy()).tolist()
        allowed = [e for e in DATASET1_ENERGIES_MEV if lo * (1 - 1e-6) <= e <= hi * (1 + 1e-6)]
        if not allowed:
            raise ValueError(f"{args.model}: trained on {lo:.4g}-{hi:.4g} MeV, which holds none of "
                             "dataset 1's energies; use --energy")
        energies = rng.choice(np.asarray(allowed), size=args.n)
    torch.manual_seed(args.seed)
    showers = model.sample(energies, batch_size=args.batch_size)
    sample = ShowerSample(energies[:, None].astype(np.float32), showers)
    path = write_showers(args.output, sample, attrs={"generator": "hepgen CaloMan", "model": str(args.model),
                                                     "seed": args.seed}, force=args.force)
    print(f"wrote {path} ({args.n} showers)")
    return 0
