"""Models: output shapes, parameter counts against independent formulas, seeded init, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call, grad, jvp, vjp, vmap

from sgdscope.zoo import build_loss, build_model, count_parameters, list_models
from sgdscope.zoo.registry import _MODELS


# ---- independent parameter-count formulas (written from the papers, not from the code) ----

def conv(c_in, c_out, k=3, bias=True):
    return c_in * c_out * k * k + (c_out if bias else 0)


def linear(d_in, d_out, bias=True):
    return d_in * d_out + (d_out if bias else 0)


def bn(c):
    return 2 * c


def simplecnn_count(c=3, hw=32, k=10, batch_norm=False):
    n = conv(c, 32) + conv(32, 32) + conv(32, 64) + conv(64, 64) + linear(64 * (hw // 4) ** 2, 128) + linear(128, k)
    return n + (bn(32) * 2 + bn(64) * 2 + bn(128) if batch_norm else 0)


def cifar_resnet_count(n, k=10):
    total = conv(3, 16, bias=False) + bn(16) + linear(64, k)
    c = 16
    for w in (16, 32, 64):
        for j in range(n):
            total += conv(c if j == 0 else w, w, bias=False) + conv(w, w, bias=False) + 2 * bn(w)
        c = w
    return total


def vgg_count(cfg, k=10, batch_norm=True):
    total, c = 0, 3
    for v in cfg:
        if v != "M":
            total += conv(c, v) + (bn(v) if batch_norm else 0)
            c = v
    return total + linear(512, k)


def preact18_count(k=10):
    total, c = conv(3, 64, bias=False), 64
    for i, w in enumerate((64, 128, 256, 512)):
        for j in range(2):
            c_in = c if j == 0 else w
            total += bn(c_in) + conv(c_in, w, bias=False) + bn(w) + conv(w, w, bias=False)
            if c_in != w:
                total += conv(c_in, w, k=1, bias=False)
        c = w
    return total + bn(512) + linear(512, k)


def densenet_count(blocks=(6, 12, 24, 16), g=12, k=10):
    c = 2 * g
    total = conv(3, c, bias=False)
    for i, n in enumerate(blocks):
        for _ in range(n):
            total += bn(c) + conv(c, 4 * g, k=1, bias=False) + bn(4 * g) + conv(4 * g, g, bias=False)
            c += g
        if i < len(blocks) - 1:
            total += bn(c) + conv(c, c // 2, k=1, bias=False)
            c //= 2
    return total + bn(c) + linear(c, k)


VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

# name -> (kwargs, example input shape, independent count, count stated in the docstring)
CASES = {
    "simplecnn": ({}, (3, 32, 32), simplecnn_count(), 591_274),
    "simplecnn_bn": ({}, (3, 32, 32), simplecnn_count(batch_norm=True), 591_914),
    "small_cnn": ({}, (3, 32, 32), conv(3, 15) + conv(15, 20) + conv(20, 10), 4_950),
    "convnet4": ({}, (1, 28, 28), conv(1, 32) + conv(32, 64) + linear(64 * 12 * 12, 128) + linear(128, 10), 1_199_882),
    "resnet32": ({}, (3, 32, 32), cifar_resnet_count(5), 464_154),
    "resnet56": ({}, (3, 32, 32), cifar_resnet_count(9), 853_018),
    "cifar_resnet": ({"depth": 20}, (3, 32, 32), cifar_resnet_count(3), 269_722),
    "vgg11": ({}, (3, 32, 32), vgg_count(VGG11), 9_231_114),
    "vgg16": ({}, (3, 32, 32), vgg_count(VGG16), 14_728_266),
    "preact_resnet18": ({}, (3, 32, 32), preact18_count(), 11_172_170),
    "densenet_cifar": ({}, (3, 32, 32), densenet_count(), 1_000_618),
    "mlp": ({}, (1, 28, 28), linear(784, 300) + linear(300, 100) + linear(100, 10), 266_610),
    "mlp_70": ({}, (1, 7, 7), linear(49, 70) + linear(70, 10), 4_210),
    "mlp_6220": ({}, (1, 14, 14), 6220, 6_220),
    "lstm": ({}, (80,), 20_002 * 128 + 4 * 100 * (128 + 100 + 1) + linear(100, 2), 2_652_058),
}


def _example(shape, n=2, name="", vocab=20_002):
    if name == "lstm":
        return torch.randint(0, vocab, (n, *shape), generator=torch.Generator().manual_seed(0))
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(0))


def test_every_model_has_a_case():
    assert sorted(CASES) == list_models()


@pytest.mark.parametrize("name", sorted(CASES))
def test_parameter_count_matches_formula_and_docstring(name):
    kwargs, _, formula, documented = CASES[name]
    model = build_model(name, **kwargs)
    assert count_parameters(model) == formula == documented
    doc = _MODELS[name].builder.__doc__
    assert f"{documented:,}" in doc, f"{name}: docstring does not state {documented:,}"


def test_published_resnet_sizes():
    # He et al. (2015), Table 6: ResNet-32 0.46M, ResNet-56 0.85M parameters
    assert round(count_parameters(build_model("resnet32")) / 1e6, 2) == 0.46
    assert round(count_parameters(build_model("resnet56")) / 1e6, 2) == 0.85


@pytest.mark.parametrize("name", ["simplecnn", "small_cnn", "convnet4", "resnet32", "vgg11", "mlp", "mlp_70", "lstm"])
def test_output_shape(name):
    kwargs, shape, _, _ = CASES[name]
    model = build_model(name, **kwargs).eval()
    k = 2 if name == "lstm" else 10
    with torch.no_grad():
        assert model(_example(shape, 3, name)).shape == (3, k)


@pytest.mark.parametrize(
    "name, shape, classes",
    [("simplecnn", (1, 28, 28), 7), ("resnet32", (3, 16, 16), 100), ("mlp", (40,), 10),
     ("small_cnn", (1, 7, 7), 5), ("vgg16", (1, 64, 32), 3), ("preact_resnet18", (3, 8, 8), 4), ("convnet4", (3, 10, 10), 2)],
)
def test_input_shape_and_classes_are_arguments(name, shape, classes):
    model = build_model(name, input_shape=shape, num_classes=classes).eval()
    with torch.no_grad():
        assert model(torch.rand(2, *shape)).shape == (2, classes)


def test_densenet_forward_small_config():
    """The default DenseNet's first CPU forward costs seconds (kernel set-up per conv shape); a
    small block configuration runs the same code; the default's size is checked by formula."""
    model = build_model("densenet_cifar", input_shape=(3, 16, 16), num_classes=100, blocks=(1, 2, 2, 1)).eval()
    assert count_parameters(model) == densenet_count(blocks=(1, 2, 2, 1), k=100)
    with torch.no_grad():
        assert model(torch.rand(2, 3, 16, 16)).shape == (2, 100)


def test_densenet_on_cifar100_count():
    assert count_parameters(build_model("densenet_cifar", num_classes=100)) == densenet_count(k=100) == 1_035_268


def test_options_change_the_architecture():
    assert count_parameters(build_model("mlp", input_shape=(10,), widths=(5,), activation="tanh")) == linear(10, 5) + linear(5, 10)
    assert count_parameters(build_model("mlp", input_shape=(10,), widths=(5,), bias=False)) == 10 * 5 + 5 * 10
    assert count_parameters(build_model("vgg11", batch_norm=False)) == vgg_count(VGG11, batch_norm=False) == 9_225_610
    assert count_parameters(build_model("lstm", vocab_size=100, embedding_dim=8, hidden=4)) == 102 * 8 + 4 * 4 * (8 + 4 + 1) + linear(4, 2)


@pytest.mark.parametrize("name", ["simplecnn_bn", "resnet32", "mlp", "lstm"])
def test_seeded_init_is_deterministic_and_isolated(name):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = build_model(name, seed=7)
    assert torch.equal(torch.get_rng_state(), state), "building a model moved the global RNG"
    torch.rand(10)  # a different global state must not matter
    b = build_model(name, seed=7)
    c = build_model(name, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point() and sa[k].numel() > 1)


def test_init_schemes():
    cnn = build_model("simplecnn")
    assert torch.count_nonzero(cnn.conv1.bias) == 0  # Keras: zero biases
    bound = math.sqrt(6 / (3 * 9 + 32 * 9))  # Glorot-uniform limit of conv1
    assert cnn.conv1.weight.abs().max() <= bound
    lstm = build_model("lstm")
    h = lstm.lstm.hidden_size
    assert torch.equal(lstm.lstm.bias[h : 2 * h], torch.ones(h))  # unit forget bias
    w = lstm.lstm.weight_hh
    assert torch.allclose(w.T @ w, torch.eye(h), atol=1e-5)  # orthogonal recurrent kernel
    resnet = build_model("resnet32")
    assert torch.equal(resnet.bn1.weight, torch.ones(16)) and resnet.training


def test_device_and_dtype():
    model = build_model("mlp_70", dtype=torch.float64, device="cpu")
    assert all(p.dtype == torch.float64 for p in model.parameters())
    ref = build_model("mlp_70")
    assert torch.allclose(model.fc1.weight.float(), ref.fc1.weight)


def test_unknown_model_and_bad_kwargs():
    with pytest.raises(ValueError, match=r"unknown model 'resnet33'.*resnet32"):
        build_model("resnet33")
    with pytest.raises(TypeError, match=r"'width'.*allowed:.*widths"):
        build_model("mlp", width=(10,))
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'.*relu"):
        build_model("mlp", activation="rleu")
    with pytest.raises(ValueError, match=r"input_shape"):
        build_model("simplecnn", input_shape=(32, 32))
    with pytest.raises(ValueError, match=r"too small"):
        build_model("vgg11", input_shape=(3, 16, 16))
    with pytest.raises(ValueError, match=r"6n\+2"):
        build_model("cifar_resnet", depth=33)
    with pytest.raises(ValueError, match=r"num_classes"):
        build_model("mlp", num_classes=0)


@pytest.mark.parametrize(
    "name, shape, kwargs",
    [("simplecnn_bn", (3, 4, 4), {"filters": 4, "dense": 8}), ("cifar_resnet", (3, 4, 4), {"depth": 8}),
     ("lstm", (5,), {"vocab_size": 30, "embedding_dim": 6, "hidden": 5}), ("mlp_6220", (1, 14, 14), {})],
)
def test_torch_func_hvp_and_per_example_grads(name, shape, kwargs):
    """Models must work with functional_call, forward-over-reverse HVPs and vmap'd per-example grads."""
    model = build_model(name, input_shape=shape, dtype=torch.float64, **kwargs).eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = dict(model.named_buffers())
    x, y = _example(shape, 3, name, vocab=32), torch.tensor([0, 1, 1])
    x = x if name == "lstm" else x.double()
    loss_fn = build_loss("cross_entropy")

    def loss(p, xb, yb):
        return loss_fn(functional_call(model, {**p, **buffers}, (xb,)), yb)

    v = {k: torch.randn_like(t) for k, t in params.items()}
    _, hv = jvp(lambda p: grad(loss)(p, x, y), (params,), (v,))  # forward-over-reverse
    _, pullback = vjp(lambda p: grad(loss)(p, x, y), params)
    (hv_rev,) = pullback(v)  # reverse-over-reverse, an independent path
    for k in params:
        assert torch.allclose(hv[k], hv_rev[k], atol=1e-9, rtol=1e-7), k
    if name == "lstm":  # smooth everywhere (no ReLU kinks): finite differences apply too
        eps = 1e-6
        gp = grad(loss)({k: params[k] + eps * v[k] for k in params}, x, y)
        gm = grad(loss)({k: params[k] - eps * v[k] for k in params}, x, y)
        for k in params:
            assert torch.allclose(hv[k], (gp[k] - gm[k]) / (2 * eps), atol=1e-6, rtol=1e-5), k
    per_example = vmap(grad(lambda p, xi, yi: loss(p, xi[None], yi[None])), in_dims=(None, 0, 0))(params, x, y)
    full = grad(loss)(params, x, y)
    for k in params:
        assert torch.allclose(per_example[k].mean(0), full[k], atol=1e-10), k
