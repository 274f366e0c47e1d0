"""CaloChallenge dataset-1 geometry: voxel counts, bin edges, per-layer features."""

import numpy as np
import pytest

from hepgen.data import CaloGeometry, CaloLayer


def test_photon_layout():
    g = CaloGeometry.photons()
    assert g.n_voxels == 368 and g.layer_ids == (0, 1, 2, 3, 12)
    assert [(l.n_radial, l.n_alpha) for l in g.layers] == [(8, 1), (16, 10), (19, 10), (5, 1), (5, 1)]
    assert g.angular_layers == (1, 2)
    assert g.layers[1].r_edges[-1] == 200 and g.layers[2].r_edges[-1] == 400


def test_pion_layout():
    g = CaloGeometry.pions()
    assert g.n_voxels == 533 and g.layer_ids == (0, 1, 2, 3, 12, 13, 14)
    assert [(l.n_radial, l.n_alpha) for l in g.layers] == [
        (8, 1),
        (10, 10),
        (10, 10),
        (5, 1),
        (15, 10),
        (16, 10),
        (10, 1),
    ]


BINNING_XML = """<Bins>
  <Bin pid="22" etaMin="0" etaMax="130" name="photon">
    <Layer id="0" r_edges="0,5,10,30,50,100,200,400,600" n_bin_alpha="1" />
    <Layer id="1" r_edges="0,2,4,6,8,10,12,15,20,30,40,50,70,90,120,150,200" n_bin_alpha="10"/>
    <Layer id="2" r_edges="0,2,5,10,15,20,25,30,40,50,60,80,100,130,160,200,250,300,350,400" n_bin_alpha="10"/>
    <Layer id="3" r_edges="0,50,100,200,400,600" n_bin_alpha="1" />
    <Layer id="4" r_edges="0" n_bin_alpha="1" />
    <Layer id="12" r_edges="0,100,200,400,1000,2000" n_bin_alpha="1" />
    <Layer id="13" r_edges="0" n_bin_alpha="1" />
  </Bin>
</Bins>
"""


def test_from_xml_matches_builtin(tmp_path):
    path = tmp_path / "binning.xml"
    path.write_text(BINNING_XML)
    g = CaloGeometry.from_xml(path)
    assert g.name == "photon"
    assert [l for l in g.layers] == [l for l in CaloGeometry.photons().layers]
    (tmp_path / "bad.xml").write_text("<Bins><Layer id='0' r_edges='0,1'/></Bins>")
    with pytest.raises(ValueError, match="bad.xml"):
        CaloGeometry.from_xml(tmp_path / "bad.xml")


def voxel(g, layer, alpha, radial):
    """Flat index of a voxel: layers in order, then angular bin, radial bin fastest."""
    return g.layer_slices[layer].start + alpha * g.layers[layer].n_radial + radial


def test_features_of_single_voxel_showers():
    g = CaloGeometry.photons()
    showers = np.zeros((2, g.n_voxels))
    # Shower 0: 3 MeV in layer 2, angular bin 0 (alpha = -0.9 pi), radial bin 1 (2-5 mm).
    showers[0, voxel(g, 2, 0, 1)] = 3.0
    # Shower 1: equal energy in two opposite angular bins of layer 1, radial bin 0 (r = 1 mm).
    showers[1, voxel(g, 1, 2, 0)] = 1.0
    showers[1, voxel(g, 1, 7, 0)] = 1.0
    energies = g.layer_energies(showers)
    np.testing.assert_allclose(energies, [[0, 0, 3, 0, 0], [0, 2, 0, 0, 0]])
    x, y = g.centers_of_energy(showers)
    alpha = -0.9 * np.pi
    np.testing.assert_allclose([x[0, 2], y[0, 2]], [3.5 * np.cos(alpha), 3.5 * np.sin(alpha)])
    np.testing.assert_allclose([x[1, 1], y[1, 1]], [0, 0], atol=1e-12)  # opposite bins cancel
    assert np.all(x[:, [0, 3, 4]] == 0) and np.all(np.isfinite(x))  # empty layers give 0
    wx, wy = g.widths(showers)
    assert wx[0, 2] == pytest.approx(0, abs=1e-6) and wy[0, 2] == pytest.approx(0, abs=1e-6)
    # Angular bins 2 and 7 sit at alpha = -0.5 pi and +0.5 pi: spread only in y, by r = 1 mm.
    assert wx[1, 1] == pytest.approx(0, abs=1e-6) and wy[1, 1] == pytest.approx(1.0)
    np.testing.assert_allclose(g.radial_centers(showers)[:, [1, 2]], [[0, 3.5], [1.0, 0]])
    assert g.sparsity(showers)[0, 2] == pytest.approx(189 / 190)


def test_layer_view_and_unbinned_layer_centres():
    g = CaloGeometry.photons()
    showers = np.zeros((1, g.n_voxels))
    showers[0, voxel(g, 0, 0, 3)] = 5.0  # layer 0, r in 30-50 mm, no angular binning
    assert g.layer_view(showers, 0).shape == (1, 1, 8) and g.layer_view(showers, 0)[0, 0, 3] == 5
    x, y = g.centers_of_energy(showers)
    assert x[0, 0] == pytest.approx(40.0) and y[0, 0] == pytest.approx(0.0)


def test_bad_inputs():
    g = CaloGeometry.photons()
    with pytest.raises(ValueError, match=r"showers: expected shape \(N, 368\)"):
        g.layer_energies(np.zeros((2, 533)))
    with pytest.raises(ValueError, match="r_edges"):
        CaloLayer(0, (0, 5, 3), 1)
