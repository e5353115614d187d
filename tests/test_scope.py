import pytest
import torch
from torch import nn

import sgdscope
from sgdscope import probes as P
from _oracles import make_case


def _train(model, x, y, scope=None, steps=6):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(steps):
        sl = slice(8 * (step % 5), 8 * (step % 5) + 8)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x[sl]), y[sl])
        loss.backward()
        opt.step()
        if scope is not None:
            scope.after_step(step, optimizer=opt, batch=(x[sl], y[sl]), loss=loss.detach())
    return model


def test_probes_never_change_training(tmp_path):
    """Training with a Scope full of probes gives bit-identical parameters and buffers
    (dropout's global RNG, batch-norm statistics and .grad are left alone)."""
    plain = _train(*make_case("cnn", bn=True, dropout=True, n=40))
    model, x, y = make_case("cnn", bn=True, dropout=True, n=40)
    probes = [P.top_eigenvalues(2, every=2), P.gradient_noise(4, 8, k=2, every=3), P.interpolation(5, every=1),
              P.loss_change(every=2), P.hessian_trace(4, every=5)]
    scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), (x[:16], y[:16]), probes, run_dir=tmp_path / "run", bn_mode="train", noise_data=(x, y))
    _train(model, x, y, scope)
    scope.close()
    for (k, a), b in zip(plain.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k


def test_scope_in_a_hand_written_loop_writes_a_run(tmp_path):
    model, x, y = make_case("mlp", n=40)
    probes = sgdscope.probes.break_even(every=2, k=3, num_batches=4, batch_size=8)
    with sgdscope.Scope(model, nn.CrossEntropyLoss(), (x[:20], y[:20]), probes, run_dir=tmp_path / "r", noise_data=(x, y)) as scope:
        _train(model, x, y, scope, steps=5)
        scope.log(4, "train", {"loss": 1.5})
    df = sgdscope.load_run(tmp_path / "r")
    assert set(df.probe) == {"hessian_top", "noise", "loss_change", "bn_gamma", "stability", "train"}
    top = df[(df.probe == "hessian_top") & (df.name == "lambda_1")]
    assert list(top.step) == [0, 2, 4]
    secs = df[(df.probe == "noise") & (df.name == "seconds")]
    assert len(secs) == 3 and (secs.value > 0).all()
    assert scope.run_dir == tmp_path / "r"
    assert len(sgdscope.run.load_arrays(tmp_path / "r", "noise", "spectrum")) == 3


def test_scope_rejects_duplicate_probe_names():
    model, x, y = make_case("mlp")
    with pytest.raises(ValueError, match="unique"):
        sgdscope.Scope(model, nn.CrossEntropyLoss(), (x, y), [P.loss_change(), P.loss_change()], store=False)
