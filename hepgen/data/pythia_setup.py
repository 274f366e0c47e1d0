"""Pythia 8 and FastJet: import checks, versions, a configured Pythia, final-state particles.

Both come from the ``pythia`` extra (``pip install 'hepgen[pythia]'``); nothing here is
imported by ``import hepgen.data``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata

INSTALL_HINT = "install them with: pip install 'hepgen[pythia]'"

# Settings every hepgen Pythia run shares: 13 TeV pp, quiet output, full parton shower,
# multiparton interactions and hadronization (Pythia's defaults, written out so the
# provenance is explicit), and the LHC convention that particles with c*tau > 10 mm
# (K0S, Lambda, ...) are stable.
COMMON_SETTINGS = (
    "Beams:idA = 2212",
    "Beams:idB = 2212",
    "Beams:eCM = 13000.",
    "PartonLevel:ISR = on",
    "PartonLevel:FSR = on",
    "PartonLevel:MPI = on",
    "HadronLevel:all = on",
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10.",
    "Print:quiet = on",
    "Next:numberCount = 0",
)

NEUTRINO_IDS = (12, 14, 16)


def require_pythia():
    """The ``pythia8mc`` and ``fastjet`` modules; RuntimeError with install advice otherwise."""
    try:
        import awkward  # noqa: F401  (fastjet's array interface)
        import fastjet
        import pythia8mc
    except ImportError as err:
        raise RuntimeError(f"event generation needs Pythia 8 and FastJet ({err}); {INSTALL_HINT}") from None
    return pythia8mc, fastjet


def generator_versions() -> dict[str, str]:
    """Installed versions of the generator packages, for file provenance."""
    versions = {}
    for package in ("pythia8mc", "fastjet", "awkward"):
        try:
            versions[f"{package}_version"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[f"{package}_version"] = "not installed"
    return versions


def seed_settings(seed: int) -> tuple[str, ...]:
    if not 1 <= seed <= 900_000_000:
        raise ValueError(f"seed: Pythia needs 1..900000000, got {seed}")
    return ("Random:setSeed = on", f"Random:seed = {seed}")


def make_pythia(settings: Sequence[str]):
    """An initialised Pythia with ``settings``; RuntimeError if a setting or init fails."""
    pythia8mc, _ = require_pythia()
    pythia = pythia8mc.Pythia("", False)  # no banner
    for line in settings:
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise RuntimeError("Pythia initialisation failed for settings: " + "; ".join(settings))
    return pythia


def final_state(events, exclude_ids: Sequence[int] = NEUTRINO_IDS):
    """Final-state particles of a ``nextBatch`` result as an awkward array of records
    (px, py, pz, E, id), without the particles whose |id| is in ``exclude_ids``."""
    import awkward as ak

    particles = events.prt
    keep = particles.status > 0
    for pid in exclude_ids:
        keep = keep & (abs(particles.id) != pid)
    chosen = particles[keep]
    return ak.zip(
        {"px": chosen.p.px, "py": chosen.p.py, "pz": chosen.p.pz, "E": chosen.p.e, "id": chosen.id},
        depth_limit=2,
    )
