"""The verify tests run many tiny tensor operations: one intra-op thread is several times faster than
contending for the cores of a shared machine, so every test here runs single-threaded (restored afterwards)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
