"""KVCache: the key/value buffers of one attention layer during autoregressive sampling."""

from __future__ import annotations

import torch

from hepgen.ops.masked_attention import masked_attention_decode

__all__ = ["KVCache"]


class KVCache:
    """Keys and values of the tokens generated so far, for ``masked_attention_decode``.

    Holds ``k``, ``v`` [B, H, max_length, Dh] and ``lengths`` [B] (int64, tokens cached per
    sequence; ragged after a ragged ``prefill``). Each :meth:`step` appends one token per
    sequence and returns its attention output over everything cached, itself included.

    Capacity is checked on the host, from the number of steps taken, so a step costs no
    device synchronisation.

    >>> cache = KVCache(batch=1024, heads=4, max_length=17, head_dim=32)
    >>> for i in range(17):
    ...     out = cache.step(q_i, k_i, v_i)      # each [B, H, 1, Dh]
    """

    def __init__(
        self,
        batch: int,
        heads: int,
        max_length: int,
        head_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ):
        for name, value in (("batch", batch), ("heads", heads), ("max_length", max_length), ("head_dim", head_dim)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < (0 if name == "batch" else 1):
                raise ValueError(f"{name} must be {'>= 0' if name == 'batch' else '>= 1'}, got {value}")
        shape = (batch, heads, max_length, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.lengths = torch.zeros(batch, dtype=torch.int64, device=device)
        self._longest = 0  # host-side bound on lengths.max()

    @property
    def max_length(self) -> int:
        return self.k.shape[2]

    def reset(self) -> None:
        """Forget every cached token (the buffers are reused)."""
        self.lengths.zero_()
        self._longest = 0

    def prefill(self, k: torch.Tensor, v: torch.Tensor, lengths: torch.Tensor | None = None) -> None:
        """Cache the keys and values of a prompt, [B, H, L, Dh] (e.g. from a full forward pass).

        lengths [B] gives each sequence's real prompt length (default L for all); the next
        step writes at that position.
        """
        B, H, Lmax, Dh = self.k.shape
        if k.dim() != 4 or tuple(k.shape[:2]) != (B, H) or k.shape[3] != Dh or k.shape[2] > Lmax:
            raise ValueError(f"k must have shape ({B}, {H}, L <= {Lmax}, {Dh}), got {tuple(k.shape)}")
        if v.shape != k.shape:
            raise ValueError(f"v must have the shape of k, {tuple(k.shape)}, got {tuple(v.shape)}")
        L = k.shape[2]
        self.k[:, :, :L].copy_(k)
        self.v[:, :, :L].copy_(v)
        if lengths is None:
            self.lengths.fill_(L)
            self._longest = L
        else:
            if tuple(lengths.shape) != (B,) or lengths.is_floating_point() or lengths.dtype == torch.bool:
                raise ValueError(
                    f"lengths must be an integer tensor of shape ({B},), got {lengths.dtype} {tuple(lengths.shape)}"
                )
            if B and (int(lengths.min()) < 0 or int(lengths.max()) > L):
                raise ValueError(f"lengths must lie in [0, {L}] (the prompt length)")
            self.lengths.copy_(lengths)
            self._longest = int(lengths.max()) if B else 0

    def step(
        self, q: torch.Tensor, k_new: torch.Tensor, v_new: torch.Tensor, *, scale: float | None = None
    ) -> torch.Tensor:
        """Append one token per sequence and attend over the cache: [B, H, 1, Dh] each → [B, H, 1, Dh]."""
        if self._longest >= self.max_length:
            raise RuntimeError(
                f"KVCache is full: max_length {self.max_length} tokens already cached; "
                "make a larger cache or reset() it"
            )
        out = masked_attention_decode(q, k_new, v_new, self.k, self.v, self.lengths, scale=scale)
        self.lengths += 1
        self._longest += 1
        return out
