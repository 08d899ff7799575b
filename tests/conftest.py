"""Shared test configuration: small thread count so parallel helpers and CI's 2 cores are not oversubscribed."""

import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(2)
# The suite never downloads: pretrained="imagenet" without cached weights fails with its offline message
# (set here, at import, so that CLI subprocesses inherit it too).
os.environ["CONV3T_OFFLINE"] = "1"


@pytest.fixture
def one_thread():
    """One intra-op thread for the test: on a loaded 2-core machine two spinning OpenMP threads cost many times
    the CPU time of one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
