"""Shared test configuration: small thread count so parallel helpers and CI's 2 cores are not oversubscribed."""

import os

import matplotlib
import torch

matplotlib.use("Agg")
torch.set_num_threads(2)
# The suite never downloads: pretrained="imagenet" without cached weights fails with its offline message
# (set here, at import, so that CLI subprocesses inherit it too).
os.environ["CONV3T_OFFLINE"] = "1"
