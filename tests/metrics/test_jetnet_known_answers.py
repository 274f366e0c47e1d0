"""hepgen's W1M, W1P, W1EFP, FPD, KPD and EFPs give the numbers jetnet and energyflow give.

The expected values were computed by jetnet 0.2.5 + energyflow 1.4.0 (numpy 1.26.4,
scipy 1.16, 2026-12-04) with tests/metrics/jetnet_known_answers.py, on the fixed seeded
toy jets defined there. hepgen computes the metrics itself (numpy, scipy) so that they
run on numpy 2, where energyflow does not import; these numbers hold it to jetnet's
definitions, resampling order included.
"""

import numpy as np
import pytest

pytest.importorskip("scipy", reason="the jet metrics need the eval extra (scipy)")

from jetnet_known_answers import FPD_MAX, FPD_MIN, KPD_SIZE, SETTINGS, samples

from hepgen.metrics import efps, jet_distances
from hepgen.metrics.jets import jet_metrics

# jetnet 0.2.5 (value, error) pairs; W1P and W1EFP per feature / per EFP.
JETNET = {
    "w1m": (0.01886659642538293, 0.0006533487328217966),
    "w1p": (
        [0.01770849959091852, 0.015731457883022507, 0.000673146227543254],
        [0.0012678098087629893, 0.0010804555170587323, 5.48452429243507e-05],
    ),
    "w1efp": (
        [
            0.00047370363474110176,
            0.0004128713455806016,
            0.00043452382768485823,
            0.00030529654229206,
            0.00032867653476889564,
        ],
        [
            6.288280482129332e-05,
            5.676463167117624e-05,
            5.8902462197233855e-05,
            4.186626493573449e-05,
            4.5950666366267645e-05,
        ],
    ),
    "fpd": (0.5849406983552758, 0.32477168393154127),
    "kpd": (0.04307905932169831, 0.040937395235015925),
}
# energyflow 1.4.0: the 36 d<=4 EFPs and the 5 n=4, d=4 prime EFPs of the first reference jet.
EFPS_D_LE_4_JET0 = [
    0.6681785909541931,
    0.10407142150090684,
    0.03284693178002423,
    0.011247305829546674,
    0.004068774856071478,
    0.016521237353636593,
    0.005307276577511002,
    0.001841649569813913,
    0.0017420235080727398,
    0.0034996553518777413,
    0.0011013463715772586,
    0.0026686000564684334,
    0.0008698703285208942,
    0.002617154024941882,
    0.0008392466658523245,
    0.000855955111195769,
    0.0005620200197723176,
    0.0006617650157608675,
    0.0004379385226057351,
    0.00042193258164147497,
    0.0004147085951496854,
    0.010830860773219415,
    0.003418426882290434,
    0.0011705231057363586,
    0.0010789209273615657,
    0.0017193886563468407,
    0.0005426719562764892,
    0.0005523358177200378,
    0.0003642141072331729,
    0.0011271830767473556,
    0.00027772500129407014,
    0.00027237093966252143,
    0.00027295128369519706,
    0.0003557605449368786,
    0.00017893922157854992,
    0.00011730754508886306,
]
EFPS_N4_D4_PRIME_JET0 = [
    0.0008698703285208942,
    0.0008392466658523245,
    0.000855955111195769,
    0.0005620200197723176,
    0.0006617650157608675,
]
# jetnet.utils.jet_features(...)["mass"] (through coffea's vectors) of the first 5 reference jets.
MASS_JETS_0_TO_4 = [
    0.12814069144183315,
    0.06388939226826665,
    0.10928243566098975,
    0.17026532018095603,
    0.030573618926671375,
]
# Same arithmetic in the same order: only summation order and BLAS differ. FPD goes through
# a matrix square root and a curve fit, whose last digits depend on the scipy/LAPACK build.
RTOL = 1e-9
RTOL_FPD = 1e-5


@pytest.fixture(scope="module")
def toy():
    return samples()


def test_efps_are_energyflows(toy):
    ref3 = toy[0][..., :3]
    np.testing.assert_allclose(efps.efps(ref3[:1])[0], EFPS_D_LE_4_JET0, rtol=1e-12)
    np.testing.assert_allclose(efps.efps(ref3[:1], efps.EFP_GRAPHS_N4_D4_PRIME)[0], EFPS_N4_D4_PRIME_JET0, rtol=1e-12)


def test_relative_jet_mass_is_jetnets(toy):
    np.testing.assert_allclose(jet_distances.relative_jet_mass(toy[0][:5, :, :3]), MASS_JETS_0_TO_4, rtol=1e-12)


def test_each_distance_is_jetnets(toy):
    ref, gen = toy
    ref3, gen3 = ref[..., :3], gen[..., :3]
    rng = np.random.default_rng(SETTINGS["seed"])  # one generator through W1M, W1P, W1EFP, as in jetnet
    w = dict(n_eval=SETTINGS["n_eval"], batches=SETTINGS["batches"], rng=rng)
    np.testing.assert_allclose(jet_distances.w1m(ref3, gen3, **w), JETNET["w1m"], rtol=RTOL)
    np.testing.assert_allclose(jet_distances.w1p(ref3, gen3, ref[..., 3], gen[..., 3], **w), JETNET["w1p"], rtol=RTOL)
    np.testing.assert_allclose(jet_distances.w1efp(ref3, gen3, **w), JETNET["w1efp"], rtol=RTOL)
    fr, fg = jet_distances.fpd_kpd_features(ref3), jet_distances.fpd_kpd_features(gen3)
    assert fr.shape == (len(ref3), 36)
    fpd = jet_distances.fpd(
        fr, fg, min_samples=FPD_MIN, max_samples=FPD_MAX, num_batches=SETTINGS["fpd_batches"], seed=SETTINGS["seed"]
    )
    np.testing.assert_allclose(fpd, JETNET["fpd"], rtol=RTOL_FPD)
    kpd = jet_distances.kpd(fr, fg, num_batches=SETTINGS["kpd_batches"], batch_size=KPD_SIZE, seed=SETTINGS["seed"])
    np.testing.assert_allclose(kpd, JETNET["kpd"], rtol=RTOL)


def test_jet_metrics_reports_jetnets_numbers(toy):
    ref, gen = toy
    result = jet_metrics(gen, ref, **SETTINGS)
    assert result.settings["fpd_min_samples"] == FPD_MIN and result.settings["fpd_max_samples"] == FPD_MAX
    assert result.settings["kpd_batch_size"] == KPD_SIZE
    got = {name: (result[name].value, result[name].error) for name in ("w1m", "fpd", "kpd")}
    np.testing.assert_allclose(got["w1m"], JETNET["w1m"], rtol=RTOL)
    np.testing.assert_allclose(got["fpd"], JETNET["fpd"], rtol=RTOL_FPD)
    np.testing.assert_allclose(got["kpd"], JETNET["kpd"], rtol=RTOL)
    # The quoted W1P and W1EFP are means over features / EFPs of jetnet's per-feature numbers.
    for name in ("w1p", "w1efp"):
        means, stds = JETNET[name]
        np.testing.assert_allclose((result[name].value, result[name].error), (np.mean(means), np.mean(stds)), rtol=RTOL)
    for k, feature in enumerate(("eta_rel", "phi_rel", "pt_rel")):
        m = result[f"w1p_{feature}"]
        np.testing.assert_allclose((m.value, m.error), (JETNET["w1p"][0][k], JETNET["w1p"][1][k]), rtol=RTOL)


def test_efps_check_their_input():
    with pytest.raises(ValueError, match="particles: expected shape"):
        efps.efps(np.zeros((3, 30)))
