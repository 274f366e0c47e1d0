"""Energy-flow polynomials (Komiske, Metodiev, Thaler, arXiv:1712.07124) of JetNet-layout jets.

The EFP of a multigraph G with vertices 1..N and edges E is

    EFP_G = sum_{i_1..i_N} z_{i_1} ... z_{i_N} prod_{(k,l) in E} theta_{i_k i_l}

with energyflow's hadronic measure as jetnet calls it (``measure="hadr", beta=1,
normed=None``): z_i = pT_i (not normalised: jetnet passes ``normed=None``, which energyflow
reads as False) and theta_ij = sqrt((eta_i - eta_j)^2 + dphi_ij^2), dphi wrapped into
[0, pi]. A disconnected graph's EFP is the product of its components' EFPs; the empty
graph is the single vertex, sum_i z_i.

We compute them with numpy's einsum instead of importing energyflow: energyflow's package
``__init__`` imports ``wasserstein``, whose releases need numpy < 2. The graph sets are
energyflow's own (listed below in energyflow 1.4.0's order), and the values agree with
energyflow's to rounding (tests/metrics/test_jetnet_known_answers.py).
"""

from __future__ import annotations

import numpy as np

# energyflow.EFPSet(("d<=", 4)).graphs(): every multigraph with at most 4 edges, connected
# or not, in energyflow 1.4.0's order. jetnet's FPD/KPD features.
EFP_GRAPHS_D_LE_4 = (
    (),
    ((0, 1),),
    ((0, 1), (0, 1)),
    ((0, 1), (0, 1), (0, 1)),
    ((0, 1), (0, 1), (0, 1), (0, 1)),
    ((0, 1), (0, 2)),
    ((0, 1), (0, 2), (0, 2)),
    ((0, 1), (0, 2), (0, 2), (0, 2)),
    ((0, 1), (0, 1), (0, 2), (0, 2)),
    ((0, 1), (0, 2), (1, 2)),
    ((0, 1), (0, 2), (0, 2), (1, 2)),
    ((0, 1), (0, 2), (0, 3)),
    ((0, 1), (0, 2), (0, 2), (0, 3)),
    ((0, 1), (0, 2), (1, 3)),
    ((0, 1), (0, 2), (0, 2), (1, 3)),
    ((0, 1), (0, 1), (0, 2), (1, 3)),
    ((0, 1), (0, 2), (1, 2), (0, 3)),
    ((0, 1), (0, 2), (1, 3), (2, 3)),
    ((0, 1), (0, 2), (0, 3), (0, 4)),
    ((0, 1), (0, 2), (0, 3), (1, 4)),
    ((0, 1), (0, 2), (1, 3), (2, 4)),
    ((0, 1), (2, 3)),
    ((0, 1), (2, 3), (2, 3)),
    ((0, 1), (2, 3), (2, 3), (2, 3)),
    ((0, 1), (0, 1), (2, 3), (2, 3)),
    ((0, 1), (2, 3), (2, 4)),
    ((0, 1), (0, 1), (2, 3), (2, 4)),
    ((0, 1), (2, 3), (2, 4), (2, 4)),
    ((0, 1), (2, 3), (2, 4), (3, 4)),
    ((0, 1), (2, 3), (4, 5)),
    ((0, 1), (2, 3), (2, 4), (2, 5)),
    ((0, 1), (2, 3), (2, 4), (3, 5)),
    ((0, 1), (0, 2), (3, 4), (3, 5)),
    ((0, 1), (2, 3), (4, 5), (4, 5)),
    ((0, 1), (2, 3), (4, 5), (4, 6)),
    ((0, 1), (2, 3), (4, 5), (6, 7)),
)

# energyflow.EFPSet(("n==", 4), ("d==", 4), ("p==", 1)).graphs(): the prime (connected)
# EFPs with 4 vertices and 4 edges, jetnet's default for W1EFP.
EFP_GRAPHS_N4_D4_PRIME = (
    ((0, 1), (0, 2), (0, 2), (0, 3)),
    ((0, 1), (0, 2), (0, 2), (1, 3)),
    ((0, 1), (0, 1), (0, 2), (1, 3)),
    ((0, 1), (0, 2), (1, 2), (0, 3)),
    ((0, 1), (0, 2), (1, 3), (2, 3)),
)

_LETTERS = "ijklmnopqrstuvw"  # vertex indices; "b" is the jet (batch) index


def _components(edges) -> list[list[tuple[int, int]]]:
    """The edge lists of a graph's connected components (an edgeless graph: one vertex)."""
    if not edges:
        return [[]]
    parent: dict[int, int] = {}

    def root(v):
        while parent.setdefault(v, v) != v:
            v = parent[v]
        return v

    for a, b in edges:
        parent[root(a)] = root(b)
    groups: dict[int, list] = {}
    for a, b in edges:
        groups.setdefault(root(a), []).append((a, b))
    return list(groups.values())


def _connected_efp(edges, z: np.ndarray, theta_powers: dict[int, np.ndarray]) -> np.ndarray:
    """One connected graph's EFP for a batch: z (B, M), theta_powers[k] (B, M, M)."""
    if not edges:
        return z.sum(axis=1)
    vertices = sorted({v for e in edges for v in e})
    letter = {v: _LETTERS[i] for i, v in enumerate(vertices)}
    multiplicity: dict[tuple[int, int], int] = {}
    for a, b in edges:
        key = (min(a, b), max(a, b))
        multiplicity[key] = multiplicity.get(key, 0) + 1
    terms = [f"b{letter[v]}" for v in vertices] + [f"b{letter[a]}{letter[b]}" for a, b in multiplicity]
    operands = [z] * len(vertices) + [theta_powers[k] for k in multiplicity.values()]
    return np.einsum(",".join(terms) + "->b", *operands, optimize="greedy")


def efps(particles: np.ndarray, graphs=EFP_GRAPHS_D_LE_4, *, chunk: int = 2048) -> np.ndarray:
    """EFPs (N, len(graphs)) of jets ``particles`` (N, P, >=3) = [eta, phi, pt, ...].

    Padded particles must have pT = 0 (they then contribute nothing).
    """
    particles = np.asarray(particles, dtype=np.float64)
    if particles.ndim != 3 or particles.shape[2] < 3:
        raise ValueError(f"particles: expected shape (N, P, >=3) = [eta, phi, pt, ...], got {particles.shape}")
    degrees = sorted({m for g in graphs for m in _edge_multiplicities(g)})
    out = np.empty((len(particles), len(graphs)))
    for start in range(0, len(particles), chunk):
        part = particles[start : start + chunk]
        z = part[..., 2]
        deta = part[:, :, None, 0] - part[:, None, :, 0]
        dphi = np.pi - np.abs(np.abs(part[:, :, None, 1] - part[:, None, :, 1]) - np.pi)
        theta = np.sqrt(deta**2 + dphi**2)
        theta_powers = {k: theta**k for k in degrees}
        cache: dict[tuple, np.ndarray] = {}
        for g, graph in enumerate(graphs):
            value = np.ones(len(part))
            for component in _components(graph):
                key = _relabelled(component)  # (2,3),(2,4) is (0,1),(0,2): compute it once
                if key not in cache:
                    cache[key] = _connected_efp(key, z, theta_powers)
                value = value * cache[key]
            out[start : start + chunk, g] = value
    return out


def _relabelled(edges) -> tuple[tuple[int, int], ...]:
    """The edges with vertices renumbered 0, 1, ... in order of appearance."""
    number: dict[int, int] = {}
    return tuple((number.setdefault(a, len(number)), number.setdefault(b, len(number))) for a, b in edges)


def _edge_multiplicities(graph) -> list[int]:
    counts: dict[tuple[int, int], int] = {}
    for a, b in graph:
        key = (min(a, b), max(a, b))
        counts[key] = counts.get(key, 0) + 1
    return list(counts.values())
