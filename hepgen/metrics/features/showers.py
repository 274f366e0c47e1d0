"""Calorimeter showers (CaloChallenge layout): classifier inputs and high-level features.

The classifier sees every voxel divided by the incident energy, plus the high-level
features: log10 E_inc, E_tot/E_inc, log10 of each layer's energy fraction, and the
centres of energy and widths per layer. The high-level features are those of the
CaloChallenge evaluation, computed by :class:`hepgen.data.CaloGeometry`, whose binning
is chosen from the voxel count (368: dataset 1 photons, 533: dataset 1 pions).
"""

from __future__ import annotations

import numpy as np

from hepgen.metrics._checks import check_finite
from hepgen.metrics.classify import InputGroup
from hepgen.metrics.features.observable import Observable
from hepgen.metrics.training import ClassifierConfig

KEYS = ("incident_energies", "showers")
CLASSIFIER = ClassifierConfig(hidden_layers=3, hidden_units=512)

# Added to layer energy fractions before the log, so an empty layer is a finite input
# (10⁻⁸ of the incident energy is far below any calorimeter threshold).
LOG_FLOOR = 1e-8


def read(path):
    from hepgen.data.showers import read_showers

    return read_showers(path)


def geometry_for(n_voxels: int):
    """The CaloGeometry with ``n_voxels`` voxels (dataset 1 photons or pions)."""
    from hepgen.data.calo_geometry import CaloGeometry

    for geometry in (CaloGeometry.photons(), CaloGeometry.pions()):
        if geometry.n_voxels == n_voxels:
            return geometry
    raise ValueError(
        f"showers: no known geometry has {n_voxels} voxels; expected 368 (dataset 1 photons) or 533 (dataset 1 pions)"
    )


def arrays(sample):
    """(incident energies (N,), showers (N, n_voxels)) as float64, checked, in MeV."""
    energies = np.asarray(sample.incident_energies, dtype=np.float64)
    showers = np.asarray(sample.showers, dtype=np.float64)
    if showers.ndim != 2:
        raise ValueError(f"showers: expected shape (N, n_voxels), got {showers.shape}")
    if energies.shape not in ((len(showers), 1), (len(showers),)):
        raise ValueError(f"incident_energies: expected shape ({len(showers)}, 1), got {energies.shape}")
    check_finite(energies, "incident_energies")
    check_finite(showers, "showers")
    energies = energies.reshape(-1)
    if energies.size and energies.min() <= 0:
        raise ValueError("incident_energies: expected positive energies (MeV)")
    return energies, showers


def check_compatible(truth, generated) -> None:
    """Both samples must have the same voxels (same geometry)."""
    _, s_truth = arrays(truth)
    _, s_generated = arrays(generated)
    if s_truth.shape[1] != s_generated.shape[1]:
        raise ValueError(
            f"mismatched feature sets: truth showers have {s_truth.shape[1]} voxels, generated {s_generated.shape[1]}"
        )
    geometry_for(s_truth.shape[1])


def high_level(sample) -> dict[str, np.ndarray]:
    """CaloChallenge high-level features: E_inc, E_tot/E_inc, per-layer energies, centres
    of energy and widths (x, y) in mm, each (N,) or (N, n_layers)."""
    energies, showers = arrays(sample)
    geometry = geometry_for(showers.shape[1])
    center_x, center_y = geometry.centers_of_energy(showers)
    width_x, width_y = geometry.widths(showers)
    return {
        "e_inc": energies,
        "e_ratio": showers.sum(1) / energies,
        "layer_energies": geometry.layer_energies(showers),
        "center_x": center_x,
        "center_y": center_y,
        "width_x": width_x,
        "width_y": width_y,
        "layer_ids": np.asarray(geometry.layer_ids),
        "angular": np.isin(np.arange(geometry.n_layers), geometry.angular_layers),
    }


def classifier_inputs(sample) -> list[InputGroup]:
    """One group: voxels / E_inc and the high-level features."""
    energies, showers = arrays(sample)
    hl = high_level(sample)
    columns = [
        showers / energies[:, None],
        np.log10(energies)[:, None],
        hl["e_ratio"][:, None],
        np.log10(hl["layer_energies"] / energies[:, None] + LOG_FLOOR),
    ]
    names = [f"voxel{i}" for i in range(showers.shape[1])]
    names += ["log10_e_inc", "e_tot_over_e_inc"]
    names += [f"log10_e_layer{l}_over_e_inc" for l in hl["layer_ids"]]
    for key in ("center_x", "center_y", "width_x", "width_y"):
        columns.append(hl[key])
        names += [f"{key}_layer{l}" for l in hl["layer_ids"]]
    return [InputGroup("all", tuple(names), np.concatenate(columns, 1), np.arange(len(showers)))]


def observables(sample) -> list[Observable]:
    """E_inc, E_tot/E_inc, layer energies, centres and widths (y only where layers have
    angular bins; elsewhere it is 0 by construction)."""
    hl = high_level(sample)
    out = [
        Observable("e_inc", r"$E_\mathrm{inc}$ [MeV]", hl["e_inc"], log=True),
        Observable("e_ratio", r"$E_\mathrm{tot}/E_\mathrm{inc}$", hl["e_ratio"]),
    ]
    for k, layer in enumerate(hl["layer_ids"]):
        out.append(
            Observable(f"e_layer{layer}", f"energy in layer {layer} [MeV]", hl["layer_energies"][:, k], log=True)
        )
    for k, layer in enumerate(hl["layer_ids"]):
        axes = ("x", "y") if hl["angular"][k] else ("x",)
        for axis in axes:
            out.append(
                Observable(
                    f"center_{axis}_layer{layer}",
                    f"centre of energy {axis}, layer {layer} [mm]",
                    hl[f"center_{axis}"][:, k],
                )
            )
            out.append(
                Observable(f"width_{axis}_layer{layer}", f"width {axis}, layer {layer} [mm]", hl[f"width_{axis}"][:, k])
            )
    return out
