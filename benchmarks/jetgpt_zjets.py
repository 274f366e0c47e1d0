"""Train JetGPT (and optionally its Bayesian version) on a Z+jets file and measure it.

    OMP_NUM_THREADS=2 python benchmarks/jetgpt_zjets.py --data zjets_30k.h5 --out results_dir \
        [--bayesian] [--minutes 10] [--ensemble 5]

Writes ``results.json`` and plots (dimuon mass, Delta R_jj, lepton and jet pT) to --out:
training time and loss, sampling time per 10^5 events with the KV cache and by re-running
the prefix (same model, same random numbers), and the agreement of m_mumu and Delta R_jj
with held-out truth: the 1-Wasserstein distance (with the train-vs-held-out distance as
the statistical floor), peak position and width, and a per-bin chi^2 / bins. Not a test:
figures depend on the machine and its load, which the JSON records.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import wasserstein_distance

from hepgen.data.events import EventSample, read_events
from hepgen.data.kinematics import wrap_phi
from hepgen.models.events import EventModelConfig, EventPreprocessing, build_model
from hepgen.models.events.jetgpt import sort_by_pt
from hepgen.nn.bayesian import is_bayesian, kl_divergence, weight_draws


def subset(s: EventSample, idx) -> EventSample:
    return EventSample(s.muons[idx], s.jets[idx], s.n_jets[idx], dict(s.attrs))


def observables(s: EventSample) -> dict[str, np.ndarray]:
    two = s.n_jets >= 2
    deta = s.jets[two, 0, 1] - s.jets[two, 1, 1]
    dphi = wrap_phi(s.jets[two, 0, 2] - s.jets[two, 1, 2])
    return {
        "m_mumu": s.dimuon_mass(),
        "dR_jj": np.sqrt(deta**2 + dphi**2),
        "mu1_pt": s.muons[:, 0, 0],
        "j1_pt": s.jets[:, 0, 0],
    }


BINS = {
    "m_mumu": np.linspace(70, 110, 41),
    "dR_jj": np.linspace(0, 7, 36),
    "mu1_pt": np.linspace(20, 200, 37),
    "j1_pt": np.linspace(20, 300, 29),
}
LABELS = {
    "m_mumu": r"$m_{\mu\mu}$ [GeV]",
    "dR_jj": r"$\Delta R_{j_1 j_2}$",
    "mu1_pt": r"$p_{T,\mu_1}$ [GeV]",
    "j1_pt": r"$p_{T,j_1}$ [GeV]",
}


def chi2_per_bin(a, b, bins):
    """Per-bin chi^2 / bins of two unit-normalised histograms (Poisson errors of both)."""
    ha, _ = np.histogram(a, bins)
    hb, _ = np.histogram(b, bins)
    na, nb = ha.sum(), hb.sum()
    fa, fb = ha / na, hb / nb
    var = ha / na**2 + hb / nb**2
    ok = var > 0
    return float(((fa - fb)[ok] ** 2 / var[ok]).sum() / ok.sum())


def peak(m):
    """Median and half the 16-84% range of m_mumu inside 80-100 GeV."""
    m = m[(m > 80) & (m < 100)]
    q16, q50, q84 = np.percentile(m, [16, 50, 84])
    return float(q50), float((q84 - q16) / 2)


def batches(n, batch_size, g, bucket):
    """Index batches of one epoch. With ``bucket`` each batch holds one jet count, so it runs
    5 + 4 n tokens instead of being padded to its longest event (~1.6x fewer tokens on this
    mix); without, batches mix jet counts and padding is masked."""
    if not bucket:
        return list(torch.randperm(len(n), generator=g).split(batch_size))
    out = []
    for k in (1, 2, 3):
        rows = torch.nonzero(n == k).squeeze(1)
        out += list(rows[torch.randperm(len(rows), generator=g)].split(batch_size))
    return [out[i] for i in torch.randperm(len(out), generator=g).tolist()]


def train(config, x, n, minutes, batch_size, lr, seed, log, bucket=True):
    """Adam for a wall-clock budget: the learning rate follows a cosine in elapsed time / budget
    (so the schedule ends with the budget whatever the machine's load), gradients clipped at
    norm 1; training stops after the epoch that reaches the budget."""
    torch.manual_seed(seed)
    model = build_model(config).train()
    bayesian = is_bayesian(model)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    history, t0, budget, epoch = [], time.perf_counter(), minutes * 60, 0
    while time.perf_counter() - t0 < budget:
        tot, kls = 0.0, 0.0
        for idx in batches(n, batch_size, g, bucket):
            progress = min(1.0, (time.perf_counter() - t0) / budget)
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * progress))
            loss = model.loss(x[idx], n[idx])
            objective = loss
            if bayesian:
                kl = kl_divergence(model) / len(x)
                objective = loss + kl
                kls += kl.item() * len(idx)
            opt.zero_grad(set_to_none=True)
            objective.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            tot += loss.item() * len(idx)
        epoch += 1
        history.append({"epoch": epoch, "nll": tot / len(x), "kl": kls / len(x), "seconds": time.perf_counter() - t0})
        log(f"epoch {epoch}: nll {tot / len(x):.4f} kl {kls / len(x):.4f} ({time.perf_counter() - t0:.0f} s)")
    return model.eval(), history, time.perf_counter() - t0


@torch.no_grad()
def mean_nll(model, x, n, batch=4096):
    return float(
        sum(-model.log_prob(x[i : i + batch], n[i : i + batch]).sum() for i in range(0, len(x), batch)) / len(x)
    )


def plot(truth, gens, path, bands=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(BINS)
    fig, axes = plt.subplots(
        2, len(keys), figsize=(4.2 * len(keys), 4.8), gridspec_kw={"height_ratios": [3, 1]}, sharex="col"
    )
    for j, key in enumerate(keys):
        bins = BINS[key]
        centers = 0.5 * (bins[1:] + bins[:-1])
        ht, _ = np.histogram(truth[key], bins, density=True)
        ax, rax = axes[0, j], axes[1, j]
        ax.stairs(ht, bins, color="black", label="truth (held out)")
        for (name, obs), color in zip(gens.items(), ("tab:blue", "tab:red")):
            hg, _ = np.histogram(obs[key], bins, density=True)
            ax.stairs(hg, bins, color=color, label=name)
            with np.errstate(divide="ignore", invalid="ignore"):
                rax.step(centers, hg / ht, where="mid", color=color)
            if bands and name in bands:
                members = np.array([np.histogram(m[key], bins, density=True)[0] for m in bands[name]])
                lo, hi = members.min(0), members.max(0)
                ax.fill_between(centers, lo, hi, step="mid", color=color, alpha=0.3, label=f"{name} members")
                with np.errstate(divide="ignore", invalid="ignore"):
                    rax.fill_between(centers, lo / ht, hi / ht, step="mid", color=color, alpha=0.3)
        ax.set_yscale("log" if key.endswith("pt") else "linear")
        rax.axhline(1, color="black", lw=0.8)
        rax.set_ylim(0.5, 1.5)
        rax.set_xlabel(LABELS[key])
        rax.set_ylabel("model / truth" if j == 0 else "")
        if j == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget per model")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--components", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--bayesian", action="store_true")
    ap.add_argument("--ensemble", type=int, default=5)
    ap.add_argument(
        "--timing-events",
        type=int,
        default=20_000,
        help="events timed per sampling mode (reported scaled to 10^5; default 2x10^4)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-bucket", action="store_true", help="mix jet counts in a batch (padding masked)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logf = open(out / "log.txt", "a")

    def log(msg):
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    sample = read_events(args.data)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(sample))
    n_test = int(args.test_fraction * len(sample))
    test, train_s = subset(sample, order[:n_test]), subset(sample, order[n_test:])
    prep = EventPreprocessing.fit(train_s)
    x, n = prep.encode(train_s)
    xt, nt = prep.encode(test)
    log(
        f"{args.data}: {len(sample)} events, train {len(x)}, held out {len(xt)}; fractions {prep.fractions.round(4).tolist()}"  # noqa: E501 (a table row / log line reads better whole)
    )
    config = EventModelConfig(
        model="jetgpt",
        hidden=args.hidden,
        layers=args.layers,
        bayesian=args.bayesian,
        options={"heads": args.heads, "components": args.components},
    )
    model, history, seconds = train(
        config, x, n, args.minutes, args.batch_size, args.lr, args.seed, log, bucket=not args.no_bucket
    )
    result = {
        "data": str(args.data),
        "n_train": len(x),
        "n_test": len(xt),
        "config": config.to_dict(),
        "threads": torch.get_num_threads(),
        "bucketed_batches": not args.no_bucket,
        "load_avg_start": os.getloadavg(),
        "train_seconds": seconds,
        "epochs": len(history),
        "final_train_nll": history[-1]["nll"],
        "final_kl": history[-1]["kl"],
        "test_nll": mean_nll(model, xt, nt),
        "history": history,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    log(
        f"trained {seconds:.0f} s, {len(history)} epochs; train NLL {history[-1]['nll']:.4f}, held-out NLL {result['test_nll']:.4f}"  # noqa: E501 (a table row / log line reads better whole)
    )
    torch.save(
        {"config": config.to_dict(), "state_dict": model.state_dict(), "preprocessing": prep.state()}, out / "model.pt"
    )

    # Generation: as many events as held out, with the KV cache.
    g = torch.Generator().manual_seed(args.seed + 1)
    n_gen = prep.draw_multiplicities(len(xt), np.random.default_rng(args.seed + 1))
    y = model.sample_vectors(n_gen, g)
    gen, changed = sort_by_pt(prep.decode(y, n_gen, np.random.default_rng(args.seed + 2)))
    result["reordered_fraction"] = float(changed.mean())
    truth_obs, gen_obs, train_obs = (
        observables(test),
        observables(gen),
        observables(subset(train_s, np.arange(len(test)))),
    )
    agreement = {}
    for key in ("m_mumu", "dR_jj"):
        agreement[key] = {
            "w1_model": float(wasserstein_distance(gen_obs[key], truth_obs[key])),
            "w1_floor_train_vs_test": float(wasserstein_distance(train_obs[key], truth_obs[key])),
            "chi2_per_bin_model": chi2_per_bin(gen_obs[key], truth_obs[key], BINS[key]),
            "chi2_per_bin_floor": chi2_per_bin(train_obs[key], truth_obs[key], BINS[key]),
        }
    agreement["m_mumu"]["peak_model"] = peak(gen_obs["m_mumu"])
    agreement["m_mumu"]["peak_truth"] = peak(truth_obs["m_mumu"])
    agreement["dR_jj"]["below_0.4_model"] = float((gen_obs["dR_jj"] < 0.4).mean())
    agreement["dR_jj"]["below_0.4_truth"] = float((truth_obs["dR_jj"] < 0.4).mean())
    result["agreement"] = agreement
    log(json.dumps(agreement, indent=1))
    bands = None
    if config.bayesian and args.ensemble > 1:
        members = []
        for k in weight_draws(model, args.ensemble, seed=args.seed):
            yk = model.sample_vectors(n_gen, torch.Generator().manual_seed(100 + k))
            members.append(observables(sort_by_pt(prep.decode(yk, n_gen, np.random.default_rng(k)))[0]))
        bands = {"JetGPT": members}
        result["ensemble_w1_m_mumu"] = [float(wasserstein_distance(m["m_mumu"], truth_obs["m_mumu"])) for m in members]
    name = "Bayesian JetGPT" if config.bayesian else "JetGPT"
    plot(truth_obs, {"JetGPT": gen_obs}, out / "observables.png", bands)

    # Sampling time per 10^5 events: KV cache vs re-running the prefix, same random numbers.
    n_time = prep.draw_multiplicities(args.timing_events, np.random.default_rng(7))
    timings = {}
    for use_cache in (True, False):
        t0 = time.perf_counter()
        model.sample_vectors(n_time, torch.Generator().manual_seed(3), use_cache=use_cache)
        timings["kv_cache" if use_cache else "recompute_prefix"] = time.perf_counter() - t0
        log(
            f"sampling {args.timing_events} events, use_cache={use_cache}: {timings['kv_cache' if use_cache else 'recompute_prefix']:.1f} s"  # noqa: E501 (a table row / log line reads better whole)
        )
    result["sampling_seconds_per_1e5"] = {k: v * 1e5 / args.timing_events for k, v in timings.items()}
    result["kv_cache_speedup"] = timings["recompute_prefix"] / timings["kv_cache"]
    result["load_avg_end"] = os.getloadavg()
    result["model_name"] = name
    (out / "results.json").write_text(json.dumps(result, indent=1))
    log(f"speed-up {result['kv_cache_speedup']:.2f}x; wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
