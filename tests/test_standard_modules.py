"""Standard modules in every probe (issue 12 §1): a Transformer encoder (attention, dropout,
LayerNorm) and LSTM / GRU models, in the user's train and eval modes, through real SGD steps with
torch's default attention settings, against references built without sgdscope."""
import copy
import warnings

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

import sgdscope
from sgdscope import probes as P
from _oracles import assert_same_state, model_state, reference_hessian

LR = 0.1
FALLBACK = "falling back to double backprop"


class Encoder(nn.Module):
    """A 2-layer Transformer encoder (d_model 8, 2 heads, dropout 0.1, final LayerNorm); a classifier
    on the mean over the sequence."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(3, 8)
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8))
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x)).mean(1))


class Recurrent(nn.Module):
    """An LSTM or GRU; a classifier on the last hidden state."""

    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(3, 5, batch_first=True)
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        _, state = self.rnn(x)
        h = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
        return self.head(h[-1])


MODELS = {"transformer": Encoder, "lstm": lambda: Recurrent(nn.LSTM), "gru": lambda: Recurrent(nn.GRU)}


def _settings():
    """The global settings measurement mode switches."""
    b = torch.backends.cuda
    return (torch.backends.mha.get_fastpath_enabled(), b.flash_sdp_enabled(), b.mem_efficient_sdp_enabled(),
            b.math_sdp_enabled(), b.cudnn_sdp_enabled())


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _at(model, theta):
    """An eval-mode copy of ``model`` as a function of its flat parameters."""
    ref = copy.deepcopy(model).eval()
    shapes = {n: p.shape for n, p in ref.named_parameters()}

    def forward(t, x):
        params = {n: v.view(s) for (n, s), v in zip(shapes.items(), t.split([s.numel() for s in shapes.values()]))}
        return functional_call(ref, params, (x,))

    return forward


def _example_curvatures(model, x, y, e):
    """(n,) ``e^T H_i e`` of each example's loss, by double backprop, one example at a time."""
    forward, theta = _at(model, _flat(model)), _flat(model)
    h = []
    for i in range(len(y)):
        t = theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(nn.functional.cross_entropy(forward(t, x[i : i + 1]), y[i : i + 1]), t, create_graph=True)
        (hv,) = torch.autograd.grad(g @ e, t)
        h.append(hv @ e)
    return torch.stack(h)


def _reference_hvp(model, x, y, v):
    """H v of the loss of ``(x, y)`` by double backprop."""
    forward, t = _at(model, _flat(model)), _flat(model).requires_grad_(True)
    (g,) = torch.autograd.grad(nn.functional.cross_entropy(forward(t, x), y), t, create_graph=True)
    return torch.autograd.grad(g @ v, t)[0]


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("kind", list(MODELS))
def test_every_probe_measures_standard_modules(kind, mode):
    torch.manual_seed(0)
    model = MODELS[kind]().double().train(mode == "train")
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 4, 3, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g)
    curv = (x[:8], y[:8])
    probes = [*P.break_even(every=1, k=2, num_batches=4, batch_size=4), P.interpolation(5, every=1),
              P.sharpest_directions(2, num_batches=2, batch_size=4, every=1)]
    scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), curv, probes, sink=sgdscope.MemorySink(), strict=True, train_size=16,
                           noise_data=(x, y), batch_size=4, lanczos_tol=1e-9)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    settings = _settings()
    assert settings[0] and settings[1]  # torch's defaults: the fast path and the flash kernel allowed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(2):
            theta_before = _flat(model)
            xb, yb = x[4 * step : 4 * step + 4], y[4 * step : 4 * step + 4]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            state = model_state(model)
            out = scope.after_step(step, optimizer=opt, batch=(xb, yb), loss=loss.detach())
            assert_same_state(state, model_state(model))  # modes, parameters, .grad, the global RNG
            assert _settings() == settings  # the fast path and the attention kernels restored
            assert set(out) == {p.name for p in probes}

            forward = _at(model, theta_before)
            with torch.no_grad():  # direct evaluation, torch's default kernels
                direct = [float(nn.functional.cross_entropy(forward(theta_before + a * (_flat(model) - theta_before), curv[0]), curv[1]))
                          for a in torch.linspace(0, 1, 5, dtype=torch.float64)]
            torch.testing.assert_close(out["interpolation"]["curve"], torch.tensor(direct, dtype=torch.float64), rtol=1e-10, atol=1e-12)

    # the curvature at the last step, by double backprop (through attention that needs the math kernel)
    with sdpa_kernel(SDPBackend.MATH):
        H = reference_hessian(model, [curv], vectorize=True)
        ev, vecs = torch.linalg.eigh(H)
        assert float(ev[-1] - ev[-2]) > 1e-3 * float(ev[-1])  # e_1 well defined
        h = _example_curvatures(model, x, y, vecs[:, -1])
    assert out["top_eigenvalues"]["lambda_1"] == pytest.approx(float(ev[-1]), rel=1e-8)
    assert out["top_eigenvalues"]["lambda_2"] == pytest.approx(float(ev[-2]), rel=1e-8)
    assert out["sharpest_directions"]["lambda_1"] == pytest.approx(float(ev[-1]), rel=1e-8)
    stab = out["stability"]
    assert stab["lambda_1"] == pytest.approx(float(ev[-1]), rel=1e-8)
    assert stab["s2"] == pytest.approx(float(h.var(unbiased=False)), rel=1e-6)  # all 16 examples of the noise pool
    S, N = 4, 16
    assert stab["value"] == pytest.approx((1 - LR * stab["lambda_1"]) ** 2 + stab["s2"] * LR**2 * (N - S) / (S * (N - 1)))
    fallbacks = [w for w in caught if FALLBACK in str(w.message)]
    # attention needs no fallback (measurement mode's kernels transform); LSTM / GRU on the CPU:
    # one warning for the model, then double backprop at every later call without a word
    assert len(fallbacks) == (0 if kind == "transformer" else 1), [str(w.message) for w in fallbacks]


def test_measurement_mode_overrides_and_restores_a_users_attention_settings():
    """Inside a user's flash-only context with the fast path off, measurements still run (math kernel)
    and leave both settings as the user had them, also when the measurement raises."""
    torch.manual_seed(0)
    model = Encoder().double().eval()
    x, y = torch.randn(6, 4, 3, dtype=torch.float64), torch.randint(0, 3, (6,))
    problem = sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y))
    v = torch.randn(problem.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            user = _settings()
            Hv = sgdscope.hessian_op(problem) @ v
            assert _settings() == user
            with pytest.raises(RuntimeError, match="boom"), problem.measuring():
                assert _settings()[:4] == (False, False, False, True)  # fast path off, math kernel only
                raise RuntimeError("boom")
            assert _settings() == user
        with sdpa_kernel(SDPBackend.MATH):
            ref = _reference_hvp(model, x, y, v)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    torch.testing.assert_close(Hv, ref, rtol=1e-10, atol=1e-12)


def test_forward_mode_fallback_is_chosen_once_per_model():
    """The streaming HVP and the per-example curvatures share one decision per model: the first
    failure warns, later operators and calls on the same model go to double backprop silently;
    another model decides for itself."""
    torch.manual_seed(0)
    x, y = torch.randn(6, 4, 3, dtype=torch.float64), torch.randint(0, 3, (6,))
    for _ in range(2):  # a fresh model warns again, once
        model = Recurrent(nn.LSTM).double()
        problem = sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y))
        v = torch.randn(problem.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            Hv = sgdscope.hessian_op(problem, cache_bytes=0) @ v  # streaming: forward over reverse
            s = sgdscope.noise.curvature_spread(problem, v, (x, y))
            op = sgdscope.hessian_op(problem, cache_bytes=0)
            op @ v
        assert sum(FALLBACK in str(w.message) for w in caught) == 1
        assert op.backend == "autograd"
        ref = reference_hessian(model, [(x, y)])
        torch.testing.assert_close(Hv, ref @ v, rtol=1e-10, atol=1e-12)
        e = v / v.norm()
        h = _example_curvatures(model, x, y, e)
        torch.testing.assert_close(s.samples, h, rtol=1e-10, atol=1e-12)
