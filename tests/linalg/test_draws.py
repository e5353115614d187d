"""Probe vectors come from the given generator, one seed one draw, whatever the target dtype."""
import torch

import sgdscope
from sgdscope.linalg._draws import gaussian, rademacher


def test_rademacher_is_plus_minus_one_and_seeded():
    z = rademacher((500, 4), dtype=torch.float64, device="cpu", generator=torch.Generator().manual_seed(0))
    assert z.shape == (500, 4) and z.dtype == torch.float64
    assert set(z.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(z.mean())) < 5 / (2000**0.5)  # balanced: 5 standard errors
    again = rademacher((500, 4), dtype=torch.float32, device="cpu", generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.double(), z)
    assert rademacher(7, dtype=torch.float64, device="cpu", generator=None).shape == (7,)


def test_gaussian_is_seeded():
    a = gaussian(6, dtype=torch.float64, device="cpu", generator=torch.Generator().manual_seed(1))
    b = torch.randn(6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.equal(a, b)


def test_trace_estimators_use_these_probes():
    """hutchinson_trace's samples are z^T H z for the rademacher draw of the same generator."""
    H = torch.diag(torch.arange(1.0, 9.0, dtype=torch.float64))
    H[0, 1] = H[1, 0] = 0.5
    est = sgdscope.hutchinson_trace(sgdscope.dense_op(H), 5, generator=torch.Generator().manual_seed(3))
    Z = rademacher((8, 5), dtype=torch.float64, device="cpu", generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(est.samples.to(torch.float64), ((H @ Z) * Z).sum(0))
