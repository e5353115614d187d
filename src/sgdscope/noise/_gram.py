"""Gram matrices of (L, D) gradient rows, accumulated in float64 over column blocks.

Working on the small L x L Gram matrix instead of the D x D covariance is the Gram trick of
Break-Even App. C: ``A^T A`` and ``A A^T`` share their nonzero eigenvalues, and an eigenvector
``u`` of ``A A^T`` maps to the eigenvector ``A^T u / ||A^T u||`` of ``A^T A``.
"""
from __future__ import annotations

import torch

_BLOCK = 1 << 16  # columns per block: bounds the temporary copy made by centring to L * 65536 entries


def check_rows(G: torch.Tensor, what: str, least: int = 1) -> None:
    if not isinstance(G, torch.Tensor) or G.ndim != 2:
        shape = tuple(G.shape) if isinstance(G, torch.Tensor) else type(G).__name__
        raise ValueError(f"{what}: expected an (L, D) matrix of gradient rows, got {shape}")
    if G.shape[0] < least:
        raise ValueError(f"{what}: needs at least L={least} gradient rows, got L={G.shape[0]}")
    if not G.is_floating_point():
        raise ValueError(f"{what}: expected floating gradient rows, got dtype {G.dtype}")


def gram(G: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
    """(L, L) float64 Gram matrix ``(G - shift)(G - shift)^T`` on G's device (shift: (D,) or None)."""
    L, D = G.shape
    acc = torch.zeros(L, L, dtype=torch.float64, device=G.device)
    for lo in range(0, D, _BLOCK):
        block = G[:, lo : lo + _BLOCK]
        if shift is not None:
            block = block - shift[lo : lo + _BLOCK]
        acc += (block @ block.T).to(torch.float64)
    return (acc + acc.T) / 2


def top_eigh(M: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All eigenvalues of a small symmetric float64 matrix, descending, with their eigenvectors (on the CPU)."""
    vals, vecs = torch.linalg.eigh(M.cpu())
    return vals.flip(0), vecs.flip(1)


def unit_columns(V: torch.Tensor) -> torch.Tensor:
    return V / torch.linalg.vector_norm(V, dim=0, keepdim=True).clamp_min(torch.finfo(V.dtype).tiny)


def per_example_scale(batch_size: int, population: int | None) -> float:
    """The factor c from App. C's K^M (rows of M examples) to the per-example covariance K = c K^M:
    M (N-1)/(N-M) for M of N examples drawn without replacement, or M without N (N >> M)."""
    M = int(batch_size)
    if M < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if population is None:
        return float(M)
    N = int(population)
    if N < 2 or M >= N:
        raise ValueError(
            f"population N={population} must exceed batch_size M={M} (and be >= 2): with M = N every mini-batch "
            "is the full set and carries no noise, so K cannot be recovered"
        )
    return M * (N - 1) / (N - M)
