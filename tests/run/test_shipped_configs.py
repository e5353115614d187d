from pathlib import Path

import pytest

from sgdscope.store import read_status
from sgdscope.run.config import load_config
from sgdscope.run.trainer import train

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.toml"))


def test_the_papers_settings_ship_with_cpu_variants():
    names = {p.relative_to(p.parents[1]).as_posix() for p in CONFIGS}
    for paper_scale in ("break_even/simplecnn", "break_even/resnet32", "break_even/fashion_mlp", "break_even/imdb_lstm",
                        "walk/vgg11", "walk/resnet56", "walk/mnist_mlp"):
        assert f"{paper_scale}.toml" in names and f"{paper_scale}_cpu.toml" in names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(p.parents[1]).as_posix())
def test_every_shipped_config_is_valid(path):
    cfg = load_config(path)
    assert cfg["name"] and cfg["probes"]


def test_the_embedded_cpu_config_runs(tmp_path):
    path = next(p for p in CONFIGS if p.name == "digits_nsgd_cpu.toml")
    cfg = load_config(path, [f'out="{tmp_path}"', "train.epochs=1"])
    run = train(cfg, progress=False)
    assert read_status(run)["state"] == "done"
