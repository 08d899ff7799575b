"""Shared test configuration: small thread count so parallel helpers and CI's 2 cores are not oversubscribed."""

import matplotlib
import torch

matplotlib.use("Agg")
torch.set_num_threads(2)
