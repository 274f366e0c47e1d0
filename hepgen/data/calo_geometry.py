"""Voxel geometry of the CaloChallenge datasets and the per-layer shower features built on it.

A shower is a flat vector of voxel energies ordered by (layer, angular bin, radial bin):
within a layer the radial index runs fastest. Layer ids are the ATLAS sampling numbers of
dataset 1 (0-3 electromagnetic barrel, 12-14 tile). A voxel sits at the centre of its
bin, radius r (mm, midpoint of the radial bin) and angle alpha (midpoint of the angular
bin, bins evenly spaced over [-pi, pi)); its x, y are r cos(alpha), r sin(alpha) -- the
"eta" and "phi" of the CaloChallenge evaluation code. In a layer without angular binning
every voxel has alpha = 0, so its x centre of energy is the radial one and y is 0.
"""

from __future__ import annotations

import itertools
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Energy-weighted means add this to the layer energy, so empty layers give 0, not NaN
# (as the CaloChallenge evaluation does).
_EPS = 1e-16


@dataclass(frozen=True)
class CaloLayer:
    """One readout layer: its CaloChallenge id, radial bin edges in mm, angular bin count."""

    layer_id: int
    r_edges: tuple[float, ...]
    n_alpha: int

    def __post_init__(self) -> None:
        edges = np.asarray(self.r_edges, dtype=float)
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError(f"layer {self.layer_id}: r_edges must increase, got {self.r_edges}")
        if self.n_alpha < 1:
            raise ValueError(f"layer {self.layer_id}: n_alpha must be >= 1, got {self.n_alpha}")

    @property
    def n_radial(self) -> int:
        return len(self.r_edges) - 1

    @property
    def n_voxels(self) -> int:
        return self.n_radial * self.n_alpha

    @property
    def r_centers(self) -> np.ndarray:
        """(n_radial,) midpoints of the radial bins in mm."""
        edges = np.asarray(self.r_edges, dtype=float)
        return 0.5 * (edges[1:] + edges[:-1])

    @property
    def alpha_centers(self) -> np.ndarray:
        """(n_alpha,) midpoints of the angular bins in radians."""
        edges = np.linspace(-math.pi, math.pi, self.n_alpha + 1)
        return 0.5 * (edges[1:] + edges[:-1])


class CaloGeometry:
    """The layers of a CaloChallenge dataset and per-layer features of voxelised showers.

    Feature methods take ``showers`` (N, n_voxels) in any unit and return float64 arrays
    (N, n_layers), one column per layer in the order of ``layers``.
    """

    def __init__(self, layers: Sequence[CaloLayer], name: str = ""):
        if not layers:
            raise ValueError("layers: expected at least one layer")
        self.layers = tuple(layers)
        self.name = name
        sizes = [layer.n_voxels for layer in self.layers]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.layer_slices = tuple(slice(int(a), int(b)) for a, b in itertools.pairwise(offsets))
        self.n_voxels = int(offsets[-1])
        # Per voxel: radius, angle, layer index, in storage order (alpha-major, r fastest).
        self.voxel_r = np.concatenate([np.tile(l.r_centers, l.n_alpha) for l in self.layers])
        self.voxel_alpha = np.concatenate([np.repeat(l.alpha_centers, l.n_radial) for l in self.layers])
        self.voxel_layer = np.repeat(np.arange(len(self.layers)), sizes)
        self.voxel_x = self.voxel_r * np.cos(self.voxel_alpha)
        self.voxel_y = self.voxel_r * np.sin(self.voxel_alpha)
        self._layer_matrix = np.zeros((self.n_voxels, len(self.layers)))
        self._layer_matrix[np.arange(self.n_voxels), self.voxel_layer] = 1.0

    def __repr__(self) -> str:
        return f"CaloGeometry({self.name!r}, layers={list(self.layer_ids)}, n_voxels={self.n_voxels})"

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def layer_ids(self) -> tuple[int, ...]:
        return tuple(layer.layer_id for layer in self.layers)

    @property
    def angular_layers(self) -> tuple[int, ...]:
        """Indices (into ``layers``) of the layers with more than one angular bin."""
        return tuple(i for i, layer in enumerate(self.layers) if layer.n_alpha > 1)

    @classmethod
    def photons(cls) -> CaloGeometry:
        """CaloChallenge dataset 1, photons: 368 voxels in layers 0, 1, 2, 3, 12."""
        return cls(
            [
                CaloLayer(0, (0, 5, 10, 30, 50, 100, 200, 400, 600), 1),
                CaloLayer(1, (0, 2, 4, 6, 8, 10, 12, 15, 20, 30, 40, 50, 70, 90, 120, 150, 200), 10),
                CaloLayer(
                    2,
                    (0, 2, 5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 130, 160, 200, 250, 300, 350, 400),
                    10,
                ),
                CaloLayer(3, (0, 50, 100, 200, 400, 600), 1),
                CaloLayer(12, (0, 100, 200, 400, 1000, 2000), 1),
            ],
            name="dataset1-photons",
        )

    @classmethod
    def pions(cls) -> CaloGeometry:
        """CaloChallenge dataset 1, charged pions: 533 voxels in layers 0-3 and 12-14."""
        return cls(
            [
                CaloLayer(0, (0, 5, 10, 30, 50, 100, 200, 400, 600), 1),
                CaloLayer(1, (0, 1, 4, 7, 10, 15, 30, 50, 90, 150, 200), 10),
                CaloLayer(2, (0, 5, 10, 20, 30, 50, 80, 130, 200, 300, 400), 10),
                CaloLayer(3, (0, 50, 100, 200, 400, 600), 1),
                CaloLayer(12, (0, 10, 20, 30, 50, 80, 100, 130, 160, 200, 250, 300, 350, 400, 1000, 2000), 10),
                CaloLayer(13, (0, 10, 20, 30, 50, 80, 100, 130, 160, 200, 250, 300, 350, 400, 600, 1000, 2000), 10),
                CaloLayer(14, (0, 50, 100, 150, 200, 250, 300, 400, 600, 1000, 2000), 1),
            ],
            name="dataset1-pions",
        )

    @classmethod
    def from_xml(cls, path: str | os.PathLike) -> CaloGeometry:
        """Read a CaloChallenge binning file (``binning_dataset_*.xml``); layers without
        radial bins (``r_edges="0"``) are left out, as in the challenge's voxel vectors."""
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError) as err:
            raise ValueError(f"{path}: not a readable binning XML file ({err})") from None
        layers = []
        for element in root.iter("Layer"):
            try:
                edges = tuple(float(v) for v in element.attrib["r_edges"].split(","))
                layer_id, n_alpha = int(element.attrib["id"]), int(element.attrib["n_bin_alpha"])
            except (KeyError, ValueError) as err:
                raise ValueError(f"{path}: bad <Layer> element {element.attrib} ({err})") from None
            if len(edges) > 1:
                layers.append(CaloLayer(layer_id, edges, n_alpha))
        bin_element = next(root.iter("Bin"), None)
        name = bin_element.attrib.get("name", "") if bin_element is not None else ""
        return cls(layers, name=name)

    def check(self, showers: np.ndarray, name: str = "showers") -> np.ndarray:
        """``showers`` as a float64 (N, n_voxels) array; ValueError naming ``name`` otherwise."""
        array = np.asarray(showers, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != self.n_voxels:
            raise ValueError(f"{name}: expected shape (N, {self.n_voxels}), got {array.shape}")
        return array

    def layer_view(self, showers: np.ndarray, layer: int) -> np.ndarray:
        """(N, n_alpha, n_radial) voxels of layer index ``layer`` (0 .. n_layers - 1)."""
        showers = self.check(showers)
        spec = self.layers[layer]
        return showers[:, self.layer_slices[layer]].reshape(-1, spec.n_alpha, spec.n_radial)

    def layer_energies(self, showers: np.ndarray) -> np.ndarray:
        """(N, n_layers) energy per layer."""
        return self.check(showers) @ self._layer_matrix

    def _weighted_mean(self, showers: np.ndarray, values: np.ndarray) -> np.ndarray:
        return ((showers * values) @ self._layer_matrix) / (showers @ self._layer_matrix + _EPS)

    def centers_of_energy(self, showers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x, y), each (N, n_layers): energy-weighted mean of the voxel centres in mm."""
        showers = self.check(showers)
        return self._weighted_mean(showers, self.voxel_x), self._weighted_mean(showers, self.voxel_y)

    def widths(self, showers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x, y), each (N, n_layers): energy-weighted standard deviation of the voxel
        centres in mm (0 where the variance rounds below 0)."""
        showers = self.check(showers)
        out = []
        for values in (self.voxel_x, self.voxel_y):
            mean = self._weighted_mean(showers, values)
            second = self._weighted_mean(showers, values**2)
            out.append(np.sqrt(np.clip(second - mean**2, 0.0, None)))
        return out[0], out[1]

    def radial_centers(self, showers: np.ndarray) -> np.ndarray:
        """(N, n_layers) energy-weighted mean radius in mm."""
        return self._weighted_mean(self.check(showers), self.voxel_r)

    def radial_widths(self, showers: np.ndarray) -> np.ndarray:
        """(N, n_layers) energy-weighted standard deviation of the radius in mm."""
        showers = self.check(showers)
        mean = self._weighted_mean(showers, self.voxel_r)
        second = self._weighted_mean(showers, self.voxel_r**2)
        return np.sqrt(np.clip(second - mean**2, 0.0, None))

    def sparsity(self, showers: np.ndarray, threshold: float = 0.0) -> np.ndarray:
        """(N, n_layers) fraction of voxels per layer with energy <= ``threshold``."""
        showers = self.check(showers)
        counts = (showers <= threshold).astype(np.float64) @ self._layer_matrix
        return counts / np.array([layer.n_voxels for layer in self.layers])
