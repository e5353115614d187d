import pytest
import torch
from torch import nn

import sgdscope
from _oracles import make_case, reference_hessian


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_dense_hessian_equals_torch_func_hessian(kind):
    model, x, y = make_case(kind, bn=True)
    p = sgdscope.Problem(model, nn.CrossEntropyLoss(), [(x[:9], y[:9]), (x[9:], y[9:])], bn_mode="train")
    ref = reference_hessian(model, [(x[:9], y[:9]), (x[9:], y[9:])], bn_mode="train")
    H = sgdscope.dense_hessian(p, chunk_size=17)
    torch.testing.assert_close(H.matrix, ref, rtol=1e-10, atol=1e-12)
    assert torch.equal(H.matrix, H.matrix.T)


def test_spectral_summaries():
    model, x, y = make_case("mlp")
    H = sgdscope.dense_hessian(sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y)))
    ev = torch.linalg.eigvalsh(H.matrix)
    torch.testing.assert_close(H.eigenvalues, ev)
    vals, vecs = H.top(3)
    torch.testing.assert_close(vals, ev[-3:].flip(0))
    torch.testing.assert_close(H.matrix @ vecs, vecs * vals)
    vals, vecs = H.bottom(2)
    torch.testing.assert_close(vals, ev[:2])
    assert float(H.negative_sum) == pytest.approx(float(ev.clamp(max=0).sum()))
    assert float(H.negative_sum) < 0  # a random net has negative curvature
    assert float(H.trace) == pytest.approx(float(ev.sum()))
    assert float(H.frobenius_sq) == pytest.approx(float((ev**2).sum()))
    assert float(H.spectral_norm) == pytest.approx(float(ev.abs().max()))


def test_too_large_is_refused_with_advice():
    model = nn.Linear(200, 101)
    p = sgdscope.Problem(model, nn.CrossEntropyLoss(), (torch.randn(2, 200), torch.tensor([0, 1])))
    with pytest.raises(ValueError, match="D=20301.*lanczos"):
        sgdscope.dense_hessian(p)
