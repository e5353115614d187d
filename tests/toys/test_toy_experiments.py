"""The noise paper's toy experiments reproduce its predictions (Fig. 2b-d, Fig. 7, Fig. 2a)."""
import pytest
import torch

from sgdscope.toys import (
    fit_line,
    four_d,
    negative_eigenvalue_experiment,
    noise_structure_experiment,
    simulate,
    trace_rate_experiment,
    valley_slope_experiment,
    valley_with_slope,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_trace_change_is_negative_and_linear_in_eta_squared():  # Fig. 2b, eq. 15
    res = trace_rate_experiment(etas=(0.004, 0.007, 0.010, 0.013), equilibrate=300, measure=600, chains=64,
                                generator=gen())
    assert (res.trace_change < 0).all()
    assert res.fit.r2 > 0.98
    assert abs(res.fit.slope / res.predicted_slope - 1) < 0.15  # -(measure/4) s |grad T|^2
    assert abs(res.fit.intercept) < 0.05 * res.trace_change.abs().max()


def test_sgd_noise_lowers_trace_isotropic_noise_lowers_determinant():  # Fig. 2c-d
    res = noise_structure_experiment(steps=600, record_every=100, chains=16, generator=gen(1))
    T, D = res.trace, res.det
    assert T["sgd"][-1] < T["sgd"][0] - 0.5 and D["sgd"][-1] > D["sgd"][0]
    iso_T, iso_D = T["isotropic_subspace"], D["isotropic_subspace"]
    assert iso_D[-1] < 0.5 * iso_D[0] and iso_T[-1] > iso_T[0]
    assert T["sgd"][-1] < T["isotropic_subspace"][-1] and D["isotropic_subspace"][-1] < D["sgd"][-1]


def test_valley_with_slope_stationary_theta2():  # Fig. 7, eq. 38 (shortened: larger alpha and eta)
    res = valley_slope_experiment(alpha=1e-3, lr=0.05, steps=5000, chains=8, record_every=50, generator=gen(2))
    assert res.predicted == -0.04
    assert abs(res.stationary / res.predicted - 1) < 0.2
    assert res.theta_gd[-1, 1] < 2 * res.predicted  # GD keeps sliding down the slope
    assert res.theta_noisy.shape == (len(res.steps), 8, 2)


def test_simulate_without_noise_is_gradient_descent_and_bases_agree():
    toy = valley_with_slope(0.01)
    x0 = torch.tensor([0.3, 0.2], dtype=torch.float64)
    traj = simulate(toy, x0, lr=0.1, steps=5, noise=None)
    x = x0.clone()
    for _ in range(5):
        x = x - 0.1 * toy.grad(x)
    torch.testing.assert_close(traj.theta[-1, 0], x, rtol=0, atol=0)
    # on the valley floor the top-n Hessian eigenbasis is the valley's own: same noise, same path
    floor = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    a = simulate(four_d, floor, lr=0.01, steps=1, basis="valley", generator=gen(3))
    b = simulate(four_d, floor, lr=0.01, steps=1, basis="hessian", generator=gen(3))
    torch.testing.assert_close(a.theta[-1].abs(), b.theta[-1].abs())  # eigenvector signs are free


def test_negative_eigenvalues_grow_with_the_training_loss(one_thread):  # Fig. 2a, toy size
    res = negative_eigenvalue_experiment(lrs=(0.02, 0.1), batch_sizes=(2, 8), gd_steps=1500, steps=300,
                                         snapshots=2, snapshot_every=100, generator=gen(4))
    assert len(res.lr) == 2 * 2 * 2 and res.dim == 66
    assert (res.negative_sum <= 0).all()
    assert res.fit.slope < 0 and res.fit.r2 > 0.5
    assert res.fit == fit_line(res.excess_loss, res.negative_sum)


def test_fit_line_exact():
    x = torch.tensor([0.0, 1.0, 2.0, 3.0])
    f = fit_line(x, 2 * x - 1)
    assert abs(f.slope - 2) < 1e-12 and abs(f.intercept + 1) < 1e-12 and abs(f.r2 - 1) < 1e-12
