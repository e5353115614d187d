"""Gram matrices of (L, D) gradient rows, accumulated in float64 over column blocks.

Working on the small L x L Gram matrix instead of the D x D covariance is the Gram trick of
Break-Even App. C: ``A^T A`` and ``A A^T`` share their nonzero eigenvalues, and an eigenvector
``u`` of ``A A^T`` maps to the eigenvector ``A^T u / ||A^T u||`` of ``A^T A``.
"""
from __future__ import annotations

import torch

# columns per block: bounds the buffer that each shifted block is written into to L * 32768
# entries (one buffer, reused by every block: no allocation per block). Of 8,192-65,536 columns,
# 32,768 and 65,536 were fastest for the centred Gram of 25 x 266,610 float32 rows on a 2-core CPU
# (2 threads: 5.4 ms against 6.1 ms with 16,384-column blocks each allocating its difference)
_BLOCK = 1 << 15
# each block's product as a batch of _SPLIT products over slices of its columns (``torch.bmm``, then
# summed): a product of two (L, 32768) blocks has only L x L outputs to share out, so the BLAS runs it
# on one core; a batch of 8 is shared over the cores (on 2 cores the centred Gram of 25 x 266,610
# float32 rows took 5.7 ms instead of 10.3 ms; no change on one core)
_SPLIT = 8


def _block_gram(d: torch.Tensor) -> torch.Tensor:
    """``d d^T`` in float64 for an (r, w) block, as a batch of column slices when it is contiguous."""
    r, w = d.shape
    if w % _SPLIT or not d.is_contiguous():
        return (d @ d.T).to(torch.float64)
    x = d.view(r, _SPLIT, w // _SPLIT).transpose(0, 1)  # (_SPLIT, r, w / _SPLIT)
    return torch.bmm(x, x.transpose(1, 2)).sum(0).to(torch.float64)


def check_rows(G: torch.Tensor, what: str, least: int = 1) -> None:
    if not isinstance(G, torch.Tensor) or G.ndim != 2:
        shape = tuple(G.shape) if isinstance(G, torch.Tensor) else type(G).__name__
        raise ValueError(f"{what}: expected an (L, D) matrix of gradient rows, got {shape}")
    if G.shape[0] < least:
        raise ValueError(f"{what}: needs at least L={least} gradient rows, got L={G.shape[0]}")
    if not G.is_floating_point():
        raise ValueError(f"{what}: expected floating gradient rows, got dtype {G.dtype}")


def _gram_over_blocks(blocks, *, shift: torch.Tensor | None = None, shift_first: bool = False) -> torch.Tensor:
    """Unsymmetrised float64 Gram matrix of the rows of column blocks, shifted block by block while
    the block is in cache: by ``shift`` (D,), or with ``shift_first`` by row 0 (then of the other
    rows only, (L-1, L-1)). Each shifted block is written into one buffer reused by every block."""
    first = blocks[0]
    skip = 1 if shift_first else 0
    n = first.shape[0] - skip
    acc = torch.zeros(n, n, dtype=torch.float64, device=first.device)
    shifted = shift is not None or shift_first
    buf = first.new_empty(n * min(_BLOCK, max(b.shape[1] for b in blocks))) if shifted else None
    offset = 0
    for b in blocks:
        for lo in range(0, b.shape[1], _BLOCK):
            block = b[:, lo : lo + _BLOCK]
            w = block.shape[1]
            if shifted:
                by = block[:1] if shift_first else shift[offset + lo : offset + lo + w]
                block = torch.sub(block[skip:], by, out=buf[: n * w].view(n, w))
            acc += _block_gram(block)
        offset += b.shape[1]
    return acc


def gram(G: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
    """(L, L) float64 Gram matrix ``(G - shift)(G - shift)^T`` on G's device (shift: (D,) or None)."""
    acc = _gram_over_blocks((G,), shift=shift)
    return (acc + acc.T) / 2


def column_blocks(G, what: str, least: int = 1) -> tuple[torch.Tensor, ...]:
    """Gradient rows as a tuple of column blocks, checked. An (L, D) matrix is one block; a list or
    tuple of (L, D_i) matrices (one per parameter tensor, as ``minibatch_gradients(..., blocks=True)``
    gives them) are the columns of the rows in order, ``D = sum_i D_i``, never concatenated."""
    if isinstance(G, torch.Tensor):
        blocks = (G,)
    elif isinstance(G, (list, tuple)) and G:
        blocks = tuple(G)
    else:
        raise ValueError(f"{what}: expected an (L, D) matrix of gradient rows or a list of (L, D_i) column blocks of them, "
                         f"got {type(G).__name__}{' (empty)' if isinstance(G, (list, tuple)) else ''}")
    for b in blocks:
        check_rows(b, what, least)
    first = blocks[0]
    if any(b.shape[0] != first.shape[0] or b.dtype != first.dtype or b.device != first.device for b in blocks):
        raise ValueError(f"{what}: the column blocks must share L, dtype and device, got "
                         + ", ".join(f"{tuple(b.shape)} {b.dtype} {b.device}" for b in blocks))
    return blocks


def _unchecked_blocks(G) -> tuple[torch.Tensor, ...]:
    return (G,) if isinstance(G, torch.Tensor) else tuple(G)


def join_columns(blocks) -> torch.Tensor:
    """The (L, D) matrix of column blocks: the one block itself (no copy), else their concatenation."""
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=1)


def centred_gram(G) -> torch.Tensor:
    """(L, L) float64 Gram matrix ``(G - 1 gbar^T)(G - 1 gbar^T)^T`` of the rows centred on their mean
    ``gbar``, in one pass over G (an (L, D) matrix or its column blocks, :func:`column_blocks`).

    Centring does not depend on a shift common to all rows, so the rows are shifted by the first
    one, ``d_l = g_l - g_1`` (block by block while the block is in cache: no pass for the mean, no
    copy of G), ``S = [0, 0; 0, D D^T]``, and the mean is removed in the small space,
    ``C = P S P`` with ``P = I - 1 1^T / L``, in float64. The differences d_l are as small as the
    centred rows (both are differences of gradients), so nothing is lost to cancellation, and the
    product has L-1 rows instead of L.
    """
    blocks = _unchecked_blocks(G)
    L = blocks[0].shape[0]
    S = torch.zeros(L, L, dtype=torch.float64, device=blocks[0].device)
    S[1:, 1:] = _gram_over_blocks(blocks, shift_first=True)
    return centre(S)


def rows_times(G, g: torch.Tensor) -> torch.Tensor:
    """``G g`` in float64 for rows G (a matrix or its column blocks) and g (D,) or (n, D): (L,) or (L, n)."""
    blocks = _unchecked_blocks(G)
    D = sum(b.shape[1] for b in blocks)
    if g.ndim not in (1, 2) or g.shape[-1] != D:
        raise ValueError(f"expected g of shape ({D},) or (n, {D}) for rows of D={D} parameters, got {tuple(g.shape)}")
    g = g.to(device=blocks[0].device, dtype=blocks[0].dtype)
    out, lo = 0, 0
    for b in blocks:
        part = g[..., lo : lo + b.shape[1]]
        out = out + (b @ (part if part.ndim == 1 else part.T)).to(torch.float64)
        lo += b.shape[1]
    return out


def centre(S: torch.Tensor) -> torch.Tensor:
    """``P S P``, ``P = I - 1 1^T / L``: the Gram matrix of rows with their mean removed, from the
    Gram matrix ``S`` of the rows (shifted by any common vector), symmetrised, in O(L^2)."""
    S = (S + S.T) / 2
    r = S.mean(1, keepdim=True)  # P S P = S - r 1^T - 1 r^T + mean(S): no L x L x L product
    C = S - r - r.T + r.mean()
    return (C + C.T) / 2


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
