import pytest

from sgdscope.run.config import ConfigError, apply_overrides, load_config, resolve
from _tiny_run import tiny_config


def test_defaults_fill_in_and_types_are_kept(tmp_path):
    cfg = resolve(tiny_config(tmp_path))
    assert cfg["measure"]["bn_mode"] == "auto" and cfg["optimizer"]["weight_decay"] == 0.0
    assert cfg["model"]["widths"] == [8]  # open section: passed to the builder
    assert isinstance(resolve({"optimizer": {"lr": 1}})["optimizer"]["lr"], float)


@pytest.mark.parametrize("change,match", [
    ({"trian": {}}, "unknown config key 'trian'; allowed in the top level: name, seed"),
    ({"train": {"epoch": 2}}, "unknown config key 'train.epoch'; allowed in train: epochs"),
    ({"train": {"epochs": "two"}}, "'train.epochs' must be int, got 'two'"),
    ({"dtype": "float16"}, "'dtype' must be one of \\('float32', 'float64'\\), got 'float16'"),
    ({"measure": {"bn_mode": "batch"}}, "'measure.bn_mode' must be one of"),
    ({"optimizer": {"name": "sgdd", "lr": 0.1}}, "'optimizer.name' must be one of .*sgd.*got 'sgdd'"),
    ({"model": {"name": "resnet33"}}, "'model.name' must be one of .*resnet32.*got 'resnet33'"),
    ({"data": {"name": "cifar11"}}, "'data.name' must be one of"),
    ({"probes": {"eigen": {"every": 3}}}, "probes.eigen: unknown probe type 'eigen'; allowed: alignment"),
    ({"probes": {"top_eigenvalues": {"every": 3, "kk": 3}}}, "probes.top_eigenvalues: unknown key\\(s\\) 'kk'; allowed: k, type, every"),
    ({"probes": {"loss_change": {}}}, "probes.loss_change: give a schedule"),
    ({"optimizer": {"lr": -1.0}}, "'optimizer.lr' must be > 0, got -1.0"),
])
def test_errors_name_the_key_and_what_is_allowed(change, match):
    with pytest.raises(ConfigError, match=match):
        resolve(change)


def test_overrides_parse_toml_values():
    cfg = apply_overrides({"optimizer": {"lr": 0.1}}, ["optimizer.lr=0.5", "train.epochs=3", "model.widths=[4, 4]", "name=abc", "data.normalize=false"])
    assert cfg == {"optimizer": {"lr": 0.5}, "train": {"epochs": 3}, "model": {"widths": [4, 4]}, "name": "abc", "data": {"normalize": False}}
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["optimizer.lr"])


def test_load_config_from_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('name = "x"\n[optimizer]\nlr = 0.2\n')
    assert load_config(p, ["seed=3"])["seed"] == 3
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    p.write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)
