"""Parameter groups, the LR schedule, losses and metrics, checkpoint files and RNG state (no training loop)."""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from train_helpers import tiny_synthetic

from conv3t import Conv3T
from conv3t.models import GoogLeNetOutputs, create_model
from conv3t.nn import randomize_temporal_parameters
from conv3t.train.checkpoint import AtomicCheckpointIO, CheckpointError, RNGStateCallback, load_checkpoint_file
from conv3t.train.config import validate_config
from conv3t.train.module import VideoClassifier, mean_class_accuracy, split_outputs
from conv3t.train.optim import build_optimizer, build_scheduler, lr_multiplier, parameter_groups
from conv3t.train.schema import SchedConfig


def _optim_cfg(**kw):
    return dataclasses.replace(validate_config(tiny_synthetic()).optim, **kw)


def test_temporal_parameters_get_their_own_group_and_rate():
    model = nn.Sequential(Conv3T(3, 4, 3), nn.BatchNorm3d(4), nn.Conv3d(4, 2, 1))
    groups = {g["name"]: g for g in parameter_groups(model, _optim_cfg(lr=0.01, temporal_lr=0.5, weight_decay=0.1))}
    conv = model[0]
    temporal = {id(p) for p in (conv.scale, conv.rotation, conv.translation_x, conv.translation_y)}
    assert {id(p) for p in groups["temporal"]["params"]} == temporal
    assert groups["temporal"]["lr"] == 0.5 and groups["temporal"]["weight_decay"] == 0.0
    assert {id(p) for p in groups["decay"]["params"]} == {id(conv.weight), id(model[2].weight)}
    assert groups["decay"]["lr"] == 0.01 and groups["decay"]["weight_decay"] == 0.1
    no_decay = {id(conv.bias), id(model[1].weight), id(model[1].bias), id(model[2].bias)}
    assert {id(p) for p in groups["no_decay"]["params"]} == no_decay
    # every trainable parameter exactly once
    assert sum(len(g["params"]) for g in groups.values()) == len(list(model.parameters()))


def test_temporal_lr_defaults_to_lr_and_3d_models_have_no_temporal_group():
    m3t = create_model("resnet10_3t", 5, base_width=4)
    groups = {g["name"]: g for g in parameter_groups(m3t, _optim_cfg(lr=0.02))}
    n_conv3t = sum(isinstance(m, Conv3T) for m in m3t.modules())
    assert len(groups["temporal"]["params"]) == 4 * n_conv3t and groups["temporal"]["lr"] == 0.02
    m3d = create_model("resnet10_3d", 5, base_width=4)
    assert "temporal" not in {g["name"] for g in parameter_groups(m3d, _optim_cfg())}


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_optimizers(name):
    opt = build_optimizer(nn.Linear(3, 2), _optim_cfg(name=name, lr=0.1, momentum=0.5))
    assert type(opt).__name__.lower() == name
    if name == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.5


def test_lr_schedule_values():
    # warm-up: (step + 1) / warmup; cosine from 1 at the end of warm-up to min_ratio at the last step
    assert lr_multiplier(0, 110, 10, "cosine", 0.0) == pytest.approx(0.1)
    assert lr_multiplier(9, 110, 10, "cosine", 0.0) == pytest.approx(1.0)
    assert lr_multiplier(10, 110, 10, "cosine", 0.0) == pytest.approx(1.0)
    assert lr_multiplier(60, 110, 10, "cosine", 0.2) == pytest.approx(0.2 + 0.8 * 0.5)
    assert lr_multiplier(35, 110, 10, "cosine", 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_multiplier(110, 110, 10, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_multiplier(50, 110, 0, "constant", 0.0) == 1.0
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = build_scheduler(opt, SchedConfig(name="cosine", warmup_epochs=0.5, min_lr_ratio=0.0), 40, 20.0)
    assert sched["interval"] == "step"
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched["scheduler"].step()
    assert lrs[0] == pytest.approx(0.2) and lrs[9] == pytest.approx(2.0)  # 10 warm-up steps
    assert lrs[25] == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi * 15 / 30)))
    plateau = build_scheduler(opt, SchedConfig(name="plateau", plateau_factor=0.5, plateau_patience=1), 40, 20.0)
    assert plateau["monitor"] == "val/top1" and plateau["interval"] == "epoch"


def test_mean_class_accuracy_by_hand():
    conf = torch.tensor([[8, 2, 0], [1, 1, 0], [0, 0, 0]])  # class 2 absent: not averaged
    assert mean_class_accuracy(conf) == pytest.approx((0.8 + 0.5) / 2)


def test_googlenet_aux_losses_weighted_0_3():
    cfg = validate_config(tiny_synthetic(model={"name": "googlenet_3t", "kwargs": {}}))
    torch.manual_seed(0)
    module = VideoClassifier(cfg, num_classes=4, model=nn.Identity())
    y = torch.tensor([0, 3])
    main, aux2, aux1 = (torch.randn(2, 4) for _ in range(3))
    loss, logits = module._loss(GoogLeNetOutputs(main, aux2, aux1), y)
    expected = F.cross_entropy(main, y) + 0.3 * (F.cross_entropy(aux1, y) + F.cross_entropy(aux2, y))
    assert torch.allclose(loss, expected) and logits is main
    plain_loss, _ = module._loss(main, y)
    assert torch.allclose(plain_loss, F.cross_entropy(main, y))
    assert split_outputs(main) == (main, [])


@pytest.mark.slow
def test_googlenet_train_step_uses_aux_heads():
    """A real (small-input) GoogLeNet in training mode returns three logits; the step's loss includes all."""
    cfg = validate_config(
        tiny_synthetic(model={"name": "googlenet_3t", "kwargs": {"stem_temporal_stride": 1, "init_weights": False}})
    )
    module = VideoClassifier(cfg, num_classes=3)
    module.log = lambda *a, **k: None  # no trainer attached
    x, y = torch.randn(2, 3, 4, 32, 32), torch.tensor([0, 2])
    captured = []
    module.model.register_forward_hook(lambda mod, inp, out: captured.append(out))
    loss = module.training_step((x, y), 0)
    (out,) = captured
    assert isinstance(out, GoogLeNetOutputs)
    expected = F.cross_entropy(out.logits, y) + 0.3 * (
        F.cross_entropy(out.aux_logits1, y) + F.cross_entropy(out.aux_logits2, y)
    )
    assert torch.allclose(loss, expected, atol=1e-5)


def test_randomized_temporal_init_is_bounded_and_keeps_scale():
    model = create_model("resnet10_3t", 3, base_width=4)
    n = randomize_temporal_parameters(model, 0.25)
    convs = [m for m in model.modules() if isinstance(m, Conv3T)]
    assert n == len(convs) > 0
    for c in convs:
        if c.rotation.numel():
            assert c.rotation.abs().max() <= 0.25 and c.rotation.abs().max() > 0
            assert c.translation_x.abs().max() <= 0.25
        assert torch.all(c.scale == 1)


def test_checkpoint_io_is_atomic_and_loads_weights_only(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "ck" / "last.ckpt"
    ckpt = {"state_dict": {"w": torch.arange(3.0)}, "epoch": 2, "hyper_parameters": {"config": {"a": [1, 2]}}}
    io.save_checkpoint(ckpt, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # no temp file left behind
    back = io.load_checkpoint(path)
    assert torch.equal(back["state_dict"]["w"], torch.arange(3.0)) and back["epoch"] == 2


def test_checkpoint_that_needs_unpickling_code_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "obj": nn.Linear(1, 1)}, path)  # a module object: needs arbitrary unpickling
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint_file(path)


def test_corrupt_and_missing_checkpoints_name_the_file(tmp_path):
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1000)}}, good)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:500])
    with pytest.raises(CheckpointError, match=f"checkpoint {truncated} is corrupt or truncated"):
        load_checkpoint_file(truncated)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=str(garbage)):
        load_checkpoint_file(garbage)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint_file(tmp_path / "nope.ckpt")
    other = tmp_path / "other.ckpt"
    torch.save({"weights": torch.ones(1)}, other)
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        load_checkpoint_file(other)


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    cb = RNGStateCallback()
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    np.random.standard_normal()  # leave a cached gaussian in numpy's state
    path = tmp_path / "rng.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {}, "cb": cb.state_dict()}, path)
    expected = (torch.rand(3), np.random.standard_normal(3), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    cb.load_state_dict(load_checkpoint_file(path)["cb"])
    got = (torch.rand(3), np.random.standard_normal(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]
