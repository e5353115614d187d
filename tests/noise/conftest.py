"""The noise tests' cases, as fixtures: each a fresh :class:`_oracles.Case` from the shared kit."""
import pytest

from _oracles import Case, build_case


@pytest.fixture
def mlp() -> Case:
    return build_case("mlp")


@pytest.fixture
def cnn() -> Case:
    return build_case("cnn")


@pytest.fixture
def bn() -> Case:
    return build_case("bn")


@pytest.fixture(params=["mlp", "cnn", "bn"])
def case(request) -> Case:
    return request.getfixturevalue(request.param)
