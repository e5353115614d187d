"""A checkpoint never runs code by default: a crafted state.pt is refused, nothing it carries executes."""
import pickle

import pytest
import torch

from sgdscope.store import RunWriter, UnsafeCheckpointError, load_checkpoint


class _WritesAFile:
    """Unpickling this calls open(path, "w"): the side effect a crafted checkpoint would have."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _crafted_run(tmp_path):
    run = tmp_path / "run"
    writer = RunWriter(run)
    writer.save_checkpoint(3, model_state={"w": torch.ones(2)}, state={"step": 3})
    marker = tmp_path / "pwned"
    torch.save({"step": 3, "payload": _WritesAFile(marker)}, run / "checkpoints" / "step_00000003" / "state.pt")
    return run, writer, marker


def test_a_crafted_state_is_refused_and_runs_nothing(tmp_path):
    run, writer, marker = _crafted_run(tmp_path)
    with pytest.raises(UnsafeCheckpointError, match=r"state\.pt: refused.*--trust-checkpoint"):
        load_checkpoint(run, 3)
    with pytest.raises(pickle.UnpicklingError):
        writer.latest_checkpoint()
    assert not marker.exists()


def test_trust_is_the_explicit_opt_in(tmp_path):
    run, _, marker = _crafted_run(tmp_path)
    _, state = load_checkpoint(run, 3, trust=True)
    assert marker.exists() and state["step"] == 3


def test_the_states_sgdscope_writes_load_without_trust(tmp_path):
    writer = RunWriter(tmp_path / "run")
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [2, 4])  # its state holds a collections.Counter
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    sched.step()
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "gen": torch.Generator().get_state()}
    writer.save_checkpoint(0, model_state=model.state_dict(), state=state)
    _, loaded = load_checkpoint(tmp_path / "run", 0)
    assert loaded["scheduler"]["milestones"] == sched.state_dict()["milestones"]
    assert torch.equal(loaded["gen"], state["gen"])
