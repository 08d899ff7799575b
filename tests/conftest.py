"""Shared test configuration: small thread count so parallel helpers and CI's 2 cores are not oversubscribed."""

import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
# Under pytest-xdist each of the two workers gets one thread: two workers with two OpenMP threads each on a
# 2-core machine spin against each other and cost more CPU time than they save.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"  # for the CLI subprocesses some tests start
else:
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


@pytest.fixture
def fake_cuda():
    """Fake CUDA on a CPU-only machine (issue 28), as a context to enter: inside, ``.to("cuda")`` /
    ``device="cuda"`` give fake CUDA tensors (shapes, dtypes and devices only, no data) and any operation that
    mixes one with a CPU tensor raises ``FakeTensorDeviceMismatchError``, as CUDA would. Build models on the CPU
    *before* entering (initialisers read data) and move them with ``.to("cuda")`` inside. cuDNN is off: its
    grid-sampler check asks the driver. Values cannot be read (``.item()``, ``.numpy()`` raise), so tests run
    code up to where a number is needed."""
    import contextlib

    from torch._subclasses.fake_tensor import FakeTensorMode

    @contextlib.contextmanager
    def context():  # type: ignore[no-untyped-def]
        with FakeTensorMode(allow_non_fake_inputs=True) as mode, torch.backends.cudnn.flags(enabled=False):
            yield mode

    return context()
