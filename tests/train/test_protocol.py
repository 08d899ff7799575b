"""The paper's training protocol as config keys: plateau schedule checked every N epochs, class weights,
early stopping (Lightning's rule and the authors'), and a short real run that shows all three at work."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from train_helpers import tiny_synthetic

from conv3t.train.config import ConfigError, validate_config
from conv3t.train.module import VideoClassifier, inverse_frequency_weights, training_label_counts
from conv3t.train.optim import CheckedPlateau, build_scheduler
from conv3t.train.run import train
from conv3t.train.schema import EarlyStopConfig, SchedConfig
from conv3t.train.stopping import PaperEarlyStopping, is_collapsed, paper_check_epochs


# ------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("section", "values", "key"),
    [
        ("sched", {"name": "step"}, "sched.name"),
        ("sched", {"name": "plateau", "plateau_patience": -1}, "sched.plateau_patience"),
        ("sched", {"name": "plateau", "plateau_every_n_epochs": 0}, "sched.plateau_every_n_epochs"),
        ("sched", {"name": "plateau", "plateau_every_n_epochs": 10, "plateau_patience": 5}, "sched.plateau_patience"),
        ("sched", {"name": "plateau", "plateau_factor": 2.0}, "sched.plateau_factor"),
        ("early_stop", {"rule": "lightning", "patience": -3}, "early_stop.patience"),
        ("early_stop", {"rule": "sometimes"}, "early_stop.rule"),
        ("early_stop", {"rule": "paper", "collapse_epochs": -1}, "early_stop.collapse_epochs"),
        ("loss", {"class_weights": "balanced"}, "loss.class_weights"),
        ("loss", {"class_weights": [1.0, "a"]}, "loss.class_weights"),
    ],
)
def test_bad_protocol_settings_name_the_key(section, values, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_config(tiny_synthetic(**{section: values}))


def test_a_class_weight_list_of_the_wrong_length_names_the_key(tmp_path):
    cfg = validate_config(tiny_synthetic(loss={"class_weights": [1.0, 2.0, 3.0]}))
    with pytest.raises(ValueError, match=r"loss\.class_weights has 3 weights but the dataset has 9 classes"):
        VideoClassifier(cfg, num_classes=9)
    with pytest.raises(ConfigError, match=r"loss\.class_weights has 3 weights"):  # through the trainer
        train(cfg, tmp_path / "run")


# --------------------------------------------------------------------------------------------- class weights
def test_inverse_frequency_weights_by_hand():
    # n = (1, 2, 4): 1/n = (1, 0.5, 0.25), sum 1.75 -> (4/7, 2/7, 1/7)
    assert inverse_frequency_weights([1, 2, 4]) == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] have no training clips"):
        inverse_frequency_weights([3, 0, 2])


def test_weighted_loss_matches_a_hand_computed_weighted_mean():
    cfg = validate_config(tiny_synthetic(loss={"class_weights": [1.0, 3.0]}))
    module = VideoClassifier(cfg, num_classes=2, model=torch.nn.Identity())
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1])
    nll = -torch.log_softmax(logits, 1)[torch.arange(2), y]
    expected = (1.0 * nll[0] + 3.0 * nll[1]) / 4.0  # weighted mean: divided by the targets' weights
    loss, _ = module._loss(logits, y)
    assert float(loss) == pytest.approx(float(expected))


# -------------------------------------------------------------------------------------------- plateau schedule
def _plateau(every: int, patience: int, factor: float = 0.5) -> tuple[torch.optim.Optimizer, CheckedPlateau]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    cfg = SchedConfig(name="plateau", plateau_factor=factor, plateau_patience=patience,
                      plateau_every_n_epochs=every, plateau_threshold=0.0)  # fmt: skip
    sched = build_scheduler(opt, cfg, total_steps=100, steps_per_epoch=1.0)
    assert sched["monitor"] == "val/top1" and sched["interval"] == "epoch"
    return opt, sched["scheduler"]


def test_plateau_halves_only_at_check_epochs_when_top1_did_not_improve():
    # The authors' setting: checks at epochs 0, 10, 20, 30; halve at a check that does not beat the best.
    opt, sched = _plateau(every=10, patience=0)
    top1 = [0.1] * 10 + [0.2] * 10 + [0.2] * 10 + [0.15] * 5 + [0.9] * 5  # epochs 0..39
    lrs = []
    for value in top1:
        sched.step(value)
        lrs.append(opt.param_groups[0]["lr"])
    # epoch 10: 0.2 > 0.1 improves; epoch 20: 0.2 == best -> halve; epoch 30: 0.15 < best -> halve again;
    # the 0.9 at epochs 35..39 is never looked at (no check)
    assert lrs[:20] == [1.0] * 20
    assert lrs[20:30] == [0.5] * 10
    assert lrs[30:] == [0.25] * 10


def test_plateau_patience_counts_epochs_and_survives_a_state_dict_round_trip():
    opt, sched = _plateau(every=2, patience=2)  # one bad check tolerated, the second halves
    for value in (0.5, 0.1, 0.4, 0.1):  # epochs 0..3: checks at 0 (best) and 2 (bad, 1st)
        sched.step(value)
    assert opt.param_groups[0]["lr"] == 1.0
    state = sched.state_dict()
    opt2, sched2 = _plateau(every=2, patience=2)
    sched2.load_state_dict(state)
    sched2.step(0.3)  # epoch 4: a check, 2nd bad one in a row -> halve
    assert opt2.param_groups[0]["lr"] == 0.5


# ------------------------------------------------------------------------------------------ early stopping
def test_paper_check_epochs():
    assert paper_check_epochs(9, 5, 30) == [0, 9, 14, 19, 24, 29]
    assert paper_check_epochs(9, 5, 5) == [0]


def test_paper_rule_stops_when_top1_falls_and_loss_rises_between_checks():
    rule = PaperEarlyStopping(EarlyStopConfig(rule="paper", check_from_epoch=9, check_every_n_epochs=5))
    history = {0: (0.2, 2.0), 9: (0.5, 1.5), 14: (0.4, 1.4), 19: (0.45, 1.6), 24: (0.3, 1.7)}
    stopped = None
    for epoch in range(30):
        # between the checks the numbers are terrible: the rule must not look at them
        top1, loss = history.get(epoch, (0.0, 99.0))
        if rule.update(epoch, top1, loss, collapsed=False):
            stopped = epoch
            break
    # 9 vs 0: better; 14 vs 9: top1 fell but loss fell too; 19 vs 14: top1 rose; 24 vs 19: fell + rose -> stop
    assert stopped == 24 and rule.stopped_epoch == 24
    assert "val/top1 fell (0.4500 -> 0.3000)" in rule.reason and "val/loss rose (1.6000 -> 1.7000)" in rule.reason


def test_paper_rule_counts_collapsed_epochs_over_the_whole_run():
    rule = PaperEarlyStopping(EarlyStopConfig(rule="paper", collapse_epochs=3))
    flags = [True, False, True, False, False, True]  # never 3 in a row, 3 in all at epoch 5
    stops = [rule.update(e, 0.5, 1.0, collapsed=c) for e, c in enumerate(flags)]
    assert stops == [False] * 5 + [True]
    assert rule.stopped_epoch == 5 and "collapsed" in rule.reason
    assert is_collapsed(torch.tensor([5, 5, 10]), 0.5) and not is_collapsed(torch.tensor([5, 6, 9]), 0.5)


def test_training_label_counts_of_the_synthetic_set():
    from conv3t.data import build_datamodule

    dm = build_datamodule({"dataset": "synthetic", "num_frames": 4, "size": 32, "num_train": 20, "num_val": 9})
    dm.setup("fit")
    # labels cycle through the 9 classes: 20 clips -> classes 0 and 1 get 3, the others 2
    assert training_label_counts(dm.train_set, 9) == [3, 3] + [2] * 7


# ----------------------------------------------------------------------------------------- a short real run
def test_real_run_halves_the_rate_on_a_stall_and_stops_by_the_rule(tmp_path):
    """resnet10_3t on synthetic clips with plateau (every epoch, patience 0, x0.5), inverse-frequency class
    weights and Lightning early stopping (patience 2). A learning rate of 1e-7 keeps the network nearly
    where it started, so validation top-1 stalls: the run must halve the rate after every epoch that did not
    beat the best and stop at the first epoch that is the 2nd in a row without improvement."""
    cfg = validate_config(
        tiny_synthetic(
            data={"num_train": 20},
            optim={"lr": 1e-7},
            sched={"name": "plateau", "plateau_factor": 0.5, "plateau_patience": 0, "plateau_every_n_epochs": 1},
            loss={"class_weights": "inverse_frequency"},
            early_stop={"rule": "lightning", "monitor": "val/top1", "patience": 2},
            trainer={"max_epochs": 8, "num_sanity_val_steps": 0},
        )
    )
    train(cfg, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    top1 = [v["val/top1"] for v in metrics["val_history"]]
    lrs = [h["lr"][0] for h in metrics["lr_history"]]
    assert [h["epoch"] for h in metrics["lr_history"]] == list(range(len(top1)))
    # expected from the recorded top-1 alone: the plateau rule and Lightning's patience rule by hand
    best, wait, expected_lr, lr, expected_stop = -math.inf, 0, [], 1e-7, None
    for epoch, value in enumerate(top1):
        expected_lr.append(lr)
        if value > best:
            best, wait = value, 0
        else:
            wait += 1
            lr *= 0.5
            if wait >= 2 and expected_stop is None:
                expected_stop = epoch
    assert lrs == pytest.approx(expected_lr, rel=1e-9)
    assert expected_stop is not None and expected_stop < 7, f"top-1 did not stall: {top1}"
    assert len(top1) == expected_stop + 1  # no epoch after the stop
    assert any(b < a for a, b in itertools.pairwise(lrs))  # the rate did halve at least once
    assert metrics["early_stop"]["rule"] == "lightning" and metrics["early_stop"]["stopped_epoch"] == expected_stop
    assert "val/top1 did not improve" in metrics["early_stop"]["reason"]
    assert metrics["class_weights"] == pytest.approx([1 / 3 / (2 / 3 + 7 / 2)] * 2 + [1 / 2 / (2 / 3 + 7 / 2)] * 7)


def test_real_run_with_the_paper_rule_stops_on_collapsed_training_predictions(tmp_path):
    """The paper's rule wired into a real run: with collapse_fraction 0.01 every epoch counts as collapsed (some
    class always gets >= 1 % of the predictions), so the run stops after its 2nd epoch, if and only if the
    module really counted its training predictions."""
    cfg = validate_config(
        tiny_synthetic(
            early_stop={"rule": "paper", "collapse_epochs": 2, "collapse_fraction": 0.01},
            trainer={"max_epochs": 6, "num_sanity_val_steps": 0},
        )
    )
    train(cfg, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["early_stop"] == {
        "rule": "paper",
        "stopped_epoch": 1,
        "reason": "training predictions collapsed onto one class in 2 epochs",
    }
    assert len(metrics["val_history"]) == 2 and metrics["epochs_completed"] == 2
