"""Known answers for hepgen's jet metrics, computed by jetnet 0.2.5 and energyflow 1.4.0 themselves.

Not a test: the script that produced the numbers in test_jetnet_known_answers.py. It needs
the old stack (numpy 1.26.4, jetnet 0.2.5, energyflow 1.4.0, wasserstein 1.1.0, coffea
2026.9.0), e.g. ``python tests/metrics/jetnet_known_answers.py`` in such a venv, and calls
jetnet the way hepgen.metrics.jets did before it computed the metrics itself (jetnet's
module-level generator seeded, mask column dropped, padding zero).
"""

import numpy as np

P = 30  # particles per jet
N = 300  # jets per sample
SETTINGS = dict(n_eval=N, batches=3, fpd_batches=5, kpd_batches=10, seed=0)
FPD_MIN, FPD_MAX, KPD_SIZE = 120, 300, 300  # hepgen.metrics.jets' shrinking of jetnet's batch sizes for 300 jets


def toy_jets(n=N, seed=0, width=0.1):
    """Gaussian (eta_rel, phi_rel) clouds, Dirichlet pT fractions, 10-30 real particles."""
    rng = np.random.default_rng(seed)
    n_real = rng.integers(10, P + 1, n)
    mask = (np.arange(P)[None] < n_real[:, None]).astype(np.float64)
    pt = rng.dirichlet(np.full(P, 0.7), size=n)
    pt = -np.sort(-pt * mask, axis=1)
    eta, phi = rng.normal(0, width, (n, P)), rng.normal(0, width, (n, P))
    return np.stack([eta, phi, pt, mask], -1) * mask[..., None]


def samples():
    """(reference, generated) particle arrays [eta_rel, phi_rel, pt_rel, mask]."""
    return toy_jets(seed=1), toy_jets(seed=2, width=0.12)


def main():
    import jetnet.evaluation as evaluation
    from jetnet import utils
    from jetnet.evaluation import gen_metrics

    ref, gen = samples()
    ref3, gen3 = ref[..., :3], gen[..., :3]
    s = SETTINGS
    gen_metrics.rng = np.random.default_rng(s["seed"])
    out = {"w1m": evaluation.w1m(ref3, gen3, num_eval_samples=s["n_eval"], num_batches=s["batches"])}
    out["w1p"] = evaluation.w1p(
        ref3, gen3, mask1=ref[..., 3], mask2=gen[..., 3], num_eval_samples=s["n_eval"], num_batches=s["batches"]
    )
    out["w1efp"] = evaluation.w1efp(ref3, gen3, num_eval_samples=s["n_eval"], num_batches=s["batches"], efp_jobs=1)
    fr = evaluation.get_fpd_kpd_jet_features(ref3, efp_jobs=1)
    fg = evaluation.get_fpd_kpd_jet_features(gen3, efp_jobs=1)
    out["fpd"] = evaluation.fpd(
        fr, fg, min_samples=FPD_MIN, max_samples=FPD_MAX, num_batches=s["fpd_batches"], seed=s["seed"]
    )
    out["kpd"] = evaluation.kpd(fr, fg, num_batches=s["kpd_batches"], batch_size=KPD_SIZE, seed=s["seed"])
    out["efps_d_le_4_jet0"] = fr[0]
    out["efps_n4_d4_prime_jet0"] = utils.efps(ref3[:1], efp_jobs=1)[0]
    out["mass_jets_0_to_4"] = utils.jet_features(ref3[:5])["mass"]
    np.set_printoptions(precision=17, linewidth=110)
    for k, v in out.items():
        print(f"{k} = {np.asarray(v, dtype=np.float64).tolist()!r}")


if __name__ == "__main__":
    main()
