"""Fixtures of the toy tests."""
import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny tensors gain nothing from intra-op threads; on a busy 2-core machine they cost 10x."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
