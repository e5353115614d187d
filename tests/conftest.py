"""Fixtures shared by all tests (helpers live in tests/_oracles.py, importable as `_oracles`)."""
import pytest

from _oracles import SHARED_DATA


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it ships beside the repo in CI)")
    return SHARED_DATA
