"""Random probe vectors, drawn from an explicit ``torch.Generator`` on the generator's own device
and then moved to where they are used (so one seed gives the same numbers whatever the target).

* :func:`gaussian`: entries ~ N(0, 1) (Lanczos and SLQ start vectors, designed optimizer noise);
* :func:`rademacher`: entries +-1 with probability 1/2 each (Hutchinson, Hutch++ and Frobenius
  probes: E[z z^T] = I with the least variance of ``z^T H z`` among such probes).
"""
from __future__ import annotations

import torch

__all__ = ["gaussian", "rademacher"]


def _device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def gaussian(shape, *, dtype, device, generator: torch.Generator | None) -> torch.Tensor:
    """A standard normal tensor of ``shape`` (an int or a tuple) and ``dtype`` on ``device``."""
    return torch.randn(shape, generator=generator, device=_device(generator), dtype=dtype).to(device)


def rademacher(shape, *, dtype, device, generator: torch.Generator | None) -> torch.Tensor:
    """A tensor of ``shape`` (an int or a tuple) of independent +-1 entries, in ``dtype`` on ``device``."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    z = torch.randint(0, 2, shape, generator=generator, device=_device(generator))
    return (2 * z - 1).to(device=device, dtype=dtype)
