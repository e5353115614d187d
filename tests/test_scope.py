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
    scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), (x[:16], y[:16]), probes, sink=tmp_path / "run", bn_mode="train", noise_data=(x, y))
    _train(model, x, y, scope)
    scope.close()
    for (k, a), b in zip(plain.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k


def test_scope_in_a_hand_written_loop_writes_a_run(tmp_path):
    model, x, y = make_case("mlp", n=40)
    probes = sgdscope.probes.break_even(every=2, k=3, num_batches=4, batch_size=8)
    with sgdscope.Scope(model, nn.CrossEntropyLoss(), (x[:20], y[:20]), probes, sink=tmp_path / "r", noise_data=(x, y)) as scope:
        _train(model, x, y, scope, steps=5)
        scope.log(4, "train", {"loss": 1.5})
    df = sgdscope.load_run(tmp_path / "r")
    assert set(df.probe) == {"top_eigenvalues", "gradient_noise", "loss_change", "bn_scale_norm", "stability", "train"}
    assert (df.probe == df.type).all()
    top = df[(df.probe == "top_eigenvalues") & (df.name == "lambda_1")]
    assert list(top.step) == [0, 2, 4]
    secs = df[(df.probe == "gradient_noise") & (df.name == "seconds")]
    assert len(secs) == 3 and (secs.value > 0).all()
    assert scope.run_dir == tmp_path / "r"
    assert len(sgdscope.load_arrays(tmp_path / "r", "gradient_noise", "spectrum")) == 3
    assert sgdscope.read_status(tmp_path / "r")["state"] == "done"


def test_scope_rejects_duplicate_probe_names():
    model, x, y = make_case("mlp")
    with pytest.raises(ValueError, match="unique"):
        sgdscope.Scope(model, nn.CrossEntropyLoss(), (x, y), [P.loss_change(), P.loss_change()], sink=sgdscope.MemorySink())


def test_before_parameters_with_a_regular_stride_and_irregular_calls():
    """Calls every 3 steps (a regular stride) still give each probe the parameters of the previous
    call as "before"; an irregular call skips that step's probes that need them, with a warning
    (probes that do not, like the top eigenvalue, still run), then recovers."""
    model, x, y = make_case("mlp", n=40)
    probes = [P.loss_change(every=6), P.top_eigenvalues(1, every=6)]
    scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), (x[:20], y[:20]), probes, sink=sgdscope.MemorySink())
    p = scope.problem
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    thetas = {}

    def call(step):
        before = p.theta()
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        thetas[step] = (before, p.theta())
        return scope.after_step(step, optimizer=opt)

    for step in (0, 3, 6, 9, 12):
        out = call(step)
        if step % 6 == 0:
            before, after = thetas[step]
            assert out["loss_change"]["loss_before"] == pytest.approx(float(p.loss(before)), rel=1e-12)
            assert out["loss_change"]["loss_after"] == pytest.approx(float(p.loss(after)), rel=1e-12)
        else:
            assert out == {}
    with pytest.warns(RuntimeWarning, match=r"previous call.*did not expect probes.*\['loss_change'\] are skipped"):
        out = call(18)  # the call at 12 expected the next at 15, where nothing is due
    assert set(out) == {"top_eigenvalues"}
    call(19)
    out = call(24)  # from now on a copy is kept at every call
    assert out["loss_change"]["loss_before"] == pytest.approx(float(p.loss(thetas[24][0])), rel=1e-12)


def _boom(ctx):
    if ctx.step >= 2:
        raise ValueError("measurement exploded")
    return {"max_residual": 0.5, "matvecs": 3.0}


def test_a_failing_probe_is_recorded_and_training_goes_on(tmp_path):
    model, x, y = make_case("mlp", n=40)
    failing = P.FunctionProbe("my_top", P.every(1), _boom, before=False, type="top_eigenvalues")
    probes = [failing, P.loss_change(every=1)]
    scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), (x[:20], y[:20]), probes, sink=tmp_path / "r")
    with pytest.warns(RuntimeWarning, match=r"probe 'my_top' failed at step 2 \(ValueError: measurement exploded\)") as caught:
        _train(model, x, y, scope, steps=5)
    assert sum("my_top" in str(w.message) for w in caught) == 1  # warned once, not at every step
    scope.close()
    df = sgdscope.load_run(tmp_path / "r")
    mine = df[df.probe == "my_top"]
    failed = mine[mine.name == "failed"]
    assert list(failed.step) == [2, 3, 4] and (failed.value == 1).all()
    later = mine[(mine.step >= 2) & mine.name.isin(["max_residual", "matvecs"])]
    assert len(later) == 6 and later.value.isna().all()
    assert len(df[(df.probe == "loss_change") & (df.name == "delta_loss")]) == 5  # the other probe went on
    status = sgdscope.read_status(tmp_path / "r")
    assert status["state"] == "done" and "my_top" in status["message"] and "measurement exploded" in status["message"]
    assert status["probe_errors"]["my_top"] == "step 4: ValueError: measurement exploded"


def test_strict_re_raises():
    model, x, y = make_case("mlp", n=40)
    failing = P.FunctionProbe("my_top", P.every(1), _boom, before=False)
    scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), (x[:20], y[:20]), [failing], sink=sgdscope.MemorySink(), strict=True)
    with pytest.raises(ValueError, match="measurement exploded"):
        _train(model, x, y, scope, steps=5)


@pytest.mark.parametrize("error, state", [(RuntimeError("user bug"), "failed"), (KeyboardInterrupt(), "interrupted")])
def test_a_scope_run_ends_with_the_truth(tmp_path, error, state):
    model, x, y = make_case("mlp", n=40)
    with pytest.raises(type(error)):
        with sgdscope.Scope(model, nn.CrossEntropyLoss(), (x[:20], y[:20]), [P.loss_change(every=1)], sink=tmp_path / "r") as scope:
            _train(model, x, y, scope, steps=2)
            assert sgdscope.read_status(tmp_path / "r")["state"] == "running"
            raise error
    status = sgdscope.read_status(tmp_path / "r")
    assert status["state"] == state and status["step"] == 1
    if state == "failed":
        assert status["message"] == "RuntimeError: user bug"
    owned = sgdscope.Scope(model, nn.CrossEntropyLoss(), (x[:20], y[:20]), [], sink=tmp_path / "plain")
    owned.close()
    assert sgdscope.read_status(tmp_path / "plain")["state"] == "done"
