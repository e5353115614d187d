"""No measurement changes the model's mode, buffers, .grad, or the global RNG stream."""
import torch

from sgdscope import noise
from _oracles import assert_same_state, model_state


def test_every_measurement_leaves_the_model_alone(bn):
    bn.model.train()
    for prm in bn.model.parameters():
        prm.grad = torch.full_like(prm, 0.5)
    before = model_state(bn.model)
    data = (bn.X, bn.Y)
    g = torch.Generator().manual_seed(0)
    for mode in ("eval", "train"):
        p = bn.problem(bn_mode=mode)
        G = noise.minibatch_gradients(p, data, batch_size=4, num_batches=3, generator=g)
        noise.covariance_spectrum(G, k=2, batch_size=4, population=12)
        noise.uncentred_moment_top(G)
        noise.gradient_hessian_alignment(p, data, batch_sizes=[2, 12], num_batches=2, generator=g)
    p = bn.problem()
    noise.per_example_gradients(p, data)
    noise.hessian_noise_cosine(p, num_matvecs=4, generator=g)
    noise.curvature_spread(p, torch.ones(p.dim, dtype=torch.float64), data)
    assert_same_state(before, model_state(bn.model))
    assert all(torch.equal(prm.grad, torch.full_like(prm, 0.5)) for prm in bn.model.parameters())
    assert bn.model.training


def test_public_api():
    for name in noise.__all__:
        assert getattr(noise, name).__doc__, f"{name} has no docstring"
