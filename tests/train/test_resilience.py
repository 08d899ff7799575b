"""Runs that survive as a user meets them: `conv3t train` processes killed with SIGKILL mid-epoch and resumed,
a SLURM requeue (SIGUSR1, a fake `scontrol`), and a 2-process DDP run on the CPU (gloo)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import tiny_synthetic

from conv3t.train.checkpoint import load_checkpoint_file

STEPS_PER_EPOCH = 4  # 16 clips / batch 4
EPOCHS = 3


def _config(tmp_path: Path, **sections) -> Path:
    """A tiny deterministic run: 3 epochs x 4 steps, last.ckpt only every 5 steps (never at an epoch's end),
    with augmentation (flip, time reversal) and random temporal init so that every RNG stream matters."""
    raw = tiny_synthetic(
        trainer={"max_epochs": EPOCHS, "deterministic": True},
        data={"num_train": 16, "batch_size": 4},
        cache={"clips": True, "flip": True, "reverse": True},
        model={"temporal_init": 0.2},
        optim={"temporal_lr": 0.05},
        sched={"warmup_epochs": 0.5},
        # no best.ckpt: the export is then the final weights, and metrics.json their validation
        checkpoint={"every_n_train_steps": 5, "every_n_epochs": 1000, "save_best": False},
        **sections,
    )
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(raw))  # JSON is YAML
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PL_", "LOCAL_RANK", "WORLD_SIZE"))}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    return env


def _train_cmd(config: Path, out: Path, *more: str) -> list[str]:
    return [sys.executable, "-m", "conv3t.cli", "train", str(config), "--out", str(out), *more]


def _run(cmd: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _start_and_wait_for(cmd: list[str], env: dict[str, str], path: Path, timeout: float = 120) -> subprocess.Popen:
    """Start ``cmd`` and return once ``path`` exists (the process is still running)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {path} appeared: {proc.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.002)
    return proc


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()


def _assert_same_run(a: Path, b: Path) -> None:
    """Same final weights (the export), same last.ckpt (step 10) and the same final validation metrics."""
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    last_a = load_checkpoint_file(a / "checkpoints" / "last.ckpt")
    last_b = load_checkpoint_file(b / "checkpoints" / "last.ckpt")
    assert last_a["global_step"] == last_b["global_step"] == 10
    for key, value in last_a["state_dict"].items():
        assert torch.equal(last_b["state_dict"][key], value), key
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert ma["metrics"] == mb["metrics"] and ma["global_step"] == mb["global_step"] == STEPS_PER_EPOCH * EPOCHS


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """``(config, run directory)`` of one uninterrupted run."""
    tmp = tmp_path_factory.mktemp("reference")
    config = _config(tmp)
    _run(_train_cmd(config, tmp / "run"), _env())
    return config, tmp / "run"


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(reference, tmp_path):
    config, ref = reference
    out = tmp_path / "killed"
    last = out / "checkpoints" / "last.ckpt"
    _kill(_start_and_wait_for(_train_cmd(config, out), _env(), last))
    saved = load_checkpoint_file(last)
    assert saved["global_step"] in (5, 10) and saved["global_step"] % STEPS_PER_EPOCH != 0  # mid-epoch
    assert not (out / "metrics.json").exists()  # it really died before the end
    loader_state = saved["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert loader_state["position"] == 4 * (saved["global_step"] % STEPS_PER_EPOCH)  # samples of the epoch done

    from conv3t.train.config import validate_config
    from conv3t.train.run import RunDirError, train

    with pytest.raises(RunDirError, match="--resume"):  # a run is there: no silent restart
        train(validate_config(json.loads(config.read_text())), out)

    proc = _run(_train_cmd(config, out, "--resume"), _env())
    assert "not resumable" not in proc.stderr
    _assert_same_run(ref, out)
    assert json.loads((out / "metrics.json").read_text())["resumed_from"] == str(last)
    with (out / "logs" / "version_1" / "metrics.csv").open() as fh:  # the resumed process's log
        steps = {int(row["step"]) for row in csv.DictReader(fh) if row.get("train/loss_step")}
    assert min(steps) == saved["global_step"] and max(steps) == STEPS_PER_EPOCH * EPOCHS - 1


@pytest.mark.slow
def test_slurm_requeue_continues_from_the_hpc_checkpoint_by_itself(reference, tmp_path):
    """SIGUSR1 -> hpc_ckpt_1.ckpt at the next step boundary + `scontrol requeue`; SLURM kills the job; the same
    command (no --resume) then finishes the run from hpc_ckpt_1.ckpt, bit-identical to an uninterrupted run."""
    config, ref = reference
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    calls = tmp_path / "scontrol_calls.txt"
    scontrol = fake_bin / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\n')
    scontrol.chmod(0o755)
    env = _env(
        PATH=f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
        SLURM_JOB_ID="4242",
        SLURM_JOB_NAME="conv3t-test",
        SLURM_NTASKS="1",
        SLURM_NTASKS_PER_NODE="1",
        SLURM_NODELIST="localhost",
        SLURM_PROCID="0",
        SLURM_LOCALID="0",
        SLURM_NODEID="0",
    )
    out = tmp_path / "slurm"
    proc = _start_and_wait_for(_train_cmd(config, out), env, out / "checkpoints" / "last.ckpt")
    proc.send_signal(signal.SIGUSR1)  # what SLURM sends --signal=SIGUSR1@90 before the time limit
    hpc = out / "hpc_ckpt_1.ckpt"
    deadline = time.monotonic() + 60
    while not (hpc.exists() and calls.exists()) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    _kill(proc)  # SLURM then ends the job
    assert calls.read_text().split() == ["requeue", "4242"]
    hpc_step = load_checkpoint_file(hpc)["global_step"]
    assert 0 < hpc_step < STEPS_PER_EPOCH * EPOCHS

    # The requeued job runs the same command, without --resume, and continues from hpc_ckpt_1.ckpt.
    _run(_train_cmd(config, out), env)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from"] == str(hpc)
    _assert_same_run(ref, out)
    assert not hpc.exists()  # superseded by last.ckpt: rerunning the command now refuses instead of going back
    from conv3t.train.config import validate_config
    from conv3t.train.run import RunDirError, train

    with pytest.raises(RunDirError, match="--resume"):
        train(validate_config(json.loads(config.read_text())), out)


def planted_jester(root: Path) -> Path:
    """A Jester folder with bad videos planted (frame files that are not JPEGs): train ``[11, 98!, 12, 13,
    97!, 14]``, validation ``[21, 99!, 22]`` (``!`` = bad). A bad video is replaced by the next index."""
    from PIL import Image
    from train_helpers import JESTER_CLASSES, frame

    root.mkdir(parents=True)
    (root / "jester-v1-labels.csv").write_text("\n".join(JESTER_CLASSES) + "\n")
    train = [("11", "Swiping Left"), ("98", "Thumb Up"), ("12", "Swiping Right"), ("13", "Thumb Up"),
             ("97", "Stop Sign"), ("14", "Stop Sign")]  # fmt: skip
    val = [("21", "Swiping Left"), ("99", "Stop Sign"), ("22", "Thumb Up")]
    (root / "jester-v1-train.csv").write_text("".join(f"{v};{c}\n" for v, c in train))
    (root / "jester-v1-validation.csv").write_text("".join(f"{v};{c}\n" for v, c in val))
    (root / "jester-v1-test.csv").write_text("")
    for k, (vid, _) in enumerate(train + val):
        folder = root / "20bn-jester-v1" / vid
        folder.mkdir(parents=True)
        for i in range(8):
            if vid in ("97", "98", "99"):
                (folder / f"{i + 1:05d}.jpg").write_bytes(b"not a jpeg")
            else:
                Image.fromarray(frame(i, 36, 64, k)).save(folder / f"{i + 1:05d}.jpg", quality=90)
    return root


def planted_config(root: Path, **sections) -> dict:
    data = {"dataset": "jester", "root": str(root), "on_error": "skip", "num_frames": 4, "size": 32, "batch_size": 3}
    raw = tiny_synthetic(checkpoint={"save_best": False}, **sections)
    raw["data"] = data
    return raw


@pytest.mark.slow
def test_skipped_samples_are_totals_of_the_whole_run(tmp_path):
    """2 bad train videos read once per epoch and 1 bad validation video per validation pass (the sanity check's
    reads are not counted): 2 epochs -> {train: 4, val: 2}, per epoch {train: 2, val: 1}."""
    from conv3t.train.config import validate_config
    from conv3t.train.run import train

    cfg = validate_config(planted_config(planted_jester(tmp_path / "jester")))
    out = tmp_path / "run"
    train(cfg, out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["skipped_samples"] == {"train": 4, "val": 2}
    per_epoch = {(e["epoch"], e["split"]): e["count"] for e in metrics["skipped_per_epoch"]}
    assert per_epoch == {(0, "train"): 2, (0, "val"): 1, (1, "train"): 2, (1, "val"): 1}
    log = next((out / "logs").glob("version_*/metrics.csv")).read_text().splitlines()
    header = log[0].split(",")
    column = header.index("data/skipped_train")
    assert [float(row.split(",")[column]) for row in log[1:] if row.split(",")[column]] == [2.0, 2.0]


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path):
    """`conv3t train` with strategy ddp, 2 CPU processes (gloo). Validation [21, 99!, 22] is sharded without
    padding: rank 0 reads 21 and 22, rank 1 reads 99 -> skipped -> 22. So the confusion matrix holds 3 clips
    (a padding sampler would add a 4th), Swiping Left 1 and Thumb Up 2, and the validation skip, which happens
    on rank 1 only, is counted once per epoch in rank 0's metrics.json."""
    raw = planted_config(
        planted_jester(tmp_path / "jester"),
        trainer={"max_epochs": 2, "strategy": "ddp", "devices": 2, "accelerator": "cpu"},
    )
    config = tmp_path / "ddp.yaml"
    config.write_text(json.dumps(raw))
    out = tmp_path / "run"
    proc = _run(_train_cmd(config, out), _env(), timeout=240)
    assert proc.stdout.count("done in") == 1 and proc.stdout.count("run directory:") == 1  # rank 0 only
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["version_0"]

    with (out / "confusion_matrix.csv").open() as fh:
        rows = {r[0]: [int(v) for v in r[1:]] for r in list(csv.reader(fh))[1:]}
    support = {name: sum(r) for name, r in rows.items() if sum(r)}
    assert support == {"Swiping Left": 1, "Thumb Up": 2}
    metrics = json.loads((out / "metrics.json").read_text())
    names = list(rows)
    correct = sum(rows[n][names.index(n)] for n in names)
    assert metrics["metrics"]["val/top1"] == pytest.approx(correct / 3)
    recall = [rows[n][names.index(n)] / support[n] for n in support]
    assert metrics["metrics"]["val/mean_class_acc"] == pytest.approx(sum(recall) / len(recall))
    assert metrics["skipped_samples"] == {"train": 4, "val": 2}
    assert metrics["global_step"] == 2 * 1  # 6 clips, 3 per rank, batch 3: one step per epoch
