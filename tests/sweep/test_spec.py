"""Grid expansion, folder names, the [sweep] table and the CLI's --grid / --seeds."""
import pytest

from sgdscope.run.config import ConfigError
from sgdscope.sweep import SweepSpec, parse_grid, parse_seeds, spec_from_table
from _tiny_run import tiny_config


def test_points_are_the_grid_times_the_seeds_with_readable_names(tmp_path):
    spec = SweepSpec(tiny_config(tmp_path), {"optimizer.lr": [0.1, 0.01], "train.batch_size": [16, 32]}, [0, 1])
    points = spec.points(tmp_path / "runs")
    assert [p.name for p in points[:3]] == ["lr=0.1,batch_size=16,seed=0", "lr=0.1,batch_size=16,seed=1",
                                             "lr=0.1,batch_size=32,seed=0"]
    assert len(points) == 8 and len({p.name for p in points}) == 8
    last = points[-1]
    assert last.values == {"optimizer.lr": 0.01, "train.batch_size": 32, "seed": 1}
    assert last.config["optimizer"]["lr"] == 0.01 and last.config["train"]["batch_size"] == 32 and last.config["seed"] == 1
    assert last.config["name"] == last.name and last.config["out"] == str(tmp_path / "runs")
    assert last.config["optimizer"]["momentum"] == 0.5  # the rest of the base config is kept


def test_keys_sharing_a_last_part_keep_their_full_name(tmp_path):
    spec = SweepSpec(tiny_config(tmp_path), {"measure.seed": [1, 2], "optimizer.momentum": [0.0]})
    assert [p.name for p in spec.points()] == ["measure.seed=1,momentum=0.0", "measure.seed=2,momentum=0.0"]
    spec = SweepSpec(tiny_config(tmp_path), {"data.name": ["synthetic"]}, [3])
    assert spec.points()[0].name == "name=synthetic,seed=3"


def test_the_sweep_table_and_the_command_line(tmp_path):
    raw = {**tiny_config(tmp_path), "sweep": {"grid": {"optimizer.lr": [0.1, 0.2], "optimizer.momentum": [0.0, 0.9]}, "seeds": [0]}}
    spec = spec_from_table(raw, parse_grid(["optimizer.lr=0.5,0.05"]), parse_seeds("1,2"))
    assert spec.grid == {"optimizer.lr": [0.5, 0.05], "optimizer.momentum": [0.0, 0.9]} and spec.seeds == [1, 2]
    assert "sweep" not in spec.base
    assert parse_grid(['optimizer.name="sgd","adam"']) == {"optimizer.name": ["sgd", "adam"]}


@pytest.mark.parametrize("grid, seeds, message", [
    ({"optimizer.lr": [0.1, -1.0]}, [], r"sweep point lr=-1.0: config key 'optimizer.lr' must be > 0"),
    ({"train.epoch": [1]}, [], r"sweep point epoch=1: unknown config key 'train.epoch'"),
    ({"seed": [1, 2]}, [], r"'seed' cannot be varied as a grid key \(use seeds\)"),
    ({"optimizer.lr": [0.1, 0.1]}, [], "repeated values"),
    ({}, [0, 0], "repeated values"),
])
def test_bad_grids_are_named(tmp_path, grid, seeds, message):
    with pytest.raises(ConfigError, match=message):
        SweepSpec(tiny_config(tmp_path), grid, seeds).points()


def test_cli_grid_errors():
    with pytest.raises(ConfigError, match="--grid expects KEY=V1,V2"):
        parse_grid(["optimizer.lr"])
    with pytest.raises(ConfigError, match="--seeds expects integers"):
        parse_seeds("a,b")


def test_a_changed_sweep_is_named_and_extend_only_adds(tmp_path):
    base = tiny_config(tmp_path)
    old = SweepSpec(base, {"optimizer.lr": [0.1]}, [0]).as_table()
    more = SweepSpec(base, {"optimizer.lr": [0.1, 0.2]}, [0, 1])
    assert more.diff(old) == ["grid.optimizer.lr ((0.1,) vs (0.1, 0.2))", "seeds ((0,) vs (0, 1))"]
    assert more.extends(old)
    assert not SweepSpec(base, {"optimizer.lr": [0.2]}, [0]).extends(old)  # drops a point
    assert not SweepSpec({**base, "seed": 5}, {"optimizer.lr": [0.1]}, [0]).extends(old)  # another base config
