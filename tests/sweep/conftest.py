"""Fixtures of the sweep tests (helpers live in tests/_sweep_kit.py)."""
import pytest

import sgdscope
from _sweep_kit import GRID, SEEDS, base_config


@pytest.fixture(scope="session")
def undisturbed(tmp_path_factory):
    """The reference sweep, run once: 4 points, 2 local workers, nothing killed."""
    out = tmp_path_factory.mktemp("undisturbed") / "sweep"
    rows = sgdscope.sweep.run_sweep(base_config(out.parent), grid=GRID, seeds=SEEDS, out=out, workers=2, quiet=True)
    assert [r["state"] for r in rows] == ["done"] * 4
    return out


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray, started once per test session (local mode no longer exists in Ray)."""
    ray = pytest.importorskip("ray", reason="ray is in the test extra: pip install -e .[test]")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
