"""The order in which training examples are visited: the same global batches whatever the
number of ranks, each rank reading one contiguous shard of the file.

Two wishes pull apart. Exact equivalence (K ranks x b == 1 process x K b, and a checkpoint
that resumes on any K) needs global batches that do not depend on K. Scalable reading
needs each rank to touch only a contiguous block of rows. A global random permutation per
epoch gives the first and not the second (every rank would touch every row); a shuffle
within per-rank shards gives the second and not the first. hepgen's order gives both:

- the N examples are cut into B contiguous *strata* (B = the global batch), stratum j the
  rows floor(j N / B) .. floor((j+1) N / B);
- at step s of epoch e the global batch takes one example from each stratum, in stratum
  order: from stratum j the s-th element of a permutation of the stratum drawn from a
  generator seeded by (seed, e, j); an epoch has floor(N / B) steps, so each epoch visits
  every example once except at most one per stratum (a different one each epoch);
- rank r of K computes batch positions r B/K .. (r+1) B/K - 1, i.e. strata r B/K ..
  (r+1) B/K - 1, which are the contiguous rows floor(r N / K) .. floor((r+1) N / K).

So the position in the run is (epoch, step), independent of K, and a rank's rows are
fixed for the whole run. The batches are stratified samples of the file: unbiased like
uniform minibatches (each example is drawn with the same probability) and no worse when
the file is sorted, since every batch spans the whole file. Ours: the papers' trainers
draw uniform minibatches; on an i.i.d. file the two are statistically the same.
The one constraint: B must be a multiple of K (each rank gets B / K of every batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hepgen.distributed.draws import mix_seed


@dataclass(frozen=True)
class StratifiedBatches:
    """Global batches of ``batch`` examples out of ``n``, per epoch from (``seed``, epoch)."""

    n: int
    batch: int
    seed: int = 0

    def __post_init__(self):
        for name in ("n", "batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.batch > self.n:
            raise ValueError(f"the global batch ({self.batch}) is larger than the {self.n} training examples")

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.batch

    def stratum_start(self, j: int) -> int:
        return j * self.n // self.batch

    def check_world(self, world_size: int) -> int:
        """The per-rank batch B / K, or a ValueError when K does not divide B."""
        if self.batch % world_size:
            raise ValueError(
                f"the global batch size {self.batch} must be a multiple of the number of processes ({world_size})"
            )
        return self.batch // world_size

    def shard(self, rank: int, world_size: int) -> tuple[int, int]:
        """The rows [start, stop) that rank ``rank`` of ``world_size`` reads for the whole run."""
        b = self.check_world(world_size)
        return self.stratum_start(rank * b), self.stratum_start((rank + 1) * b)

    def epoch_order(self, epoch: int, rank: int, world_size: int) -> torch.Tensor:
        """[steps_per_epoch, B / K] int64: row s holds this rank's examples of step s, as
        indices into its shard (row 0 = the shard's first row)."""
        b = self.check_world(world_size)
        first = rank * b
        base = self.stratum_start(first)
        steps = self.steps_per_epoch
        columns = []
        for j in range(first, first + b):
            start, stop = self.stratum_start(j), self.stratum_start(j + 1)
            g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, j))
            columns.append(torch.randperm(stop - start, generator=g)[:steps] + (start - base))
        return torch.stack(columns, dim=1)
