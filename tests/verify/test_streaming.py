"""Verification streams its clips: peak memory does not grow with textures or layers, the streamed reduction
equals the whole-set computation, and the memory budget / device / out-of-memory handling say what to change."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from conv3t import Conv3T
from conv3t.runtime import parse_memory, resolve_device
from conv3t.verify.budget import (
    MemoryBudget,
    MemoryBudgetError,
    available_bytes,
    memory_budget,
    peak_bytes,
    plan_batch,
    run_in_batches,
)
from conv3t.verify.energies import StimulusSet, centre_window, stream_energies
from conv3t.verify.network import VerifyConfig, verify_model
from conv3t.verify.stimuli import noise_texture, standard_stimuli
from conv3t.verify.tuning import response_energy

CPU = torch.device("cpu")


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        Conv3T(3, 8, 3, padding=1), nn.ReLU(), Conv3T(8, 8, 3, padding=1), nn.ReLU(), Conv3T(8, 6, 3, padding=1)
    )
    with torch.no_grad():
        for layer in net:
            if isinstance(layer, Conv3T):
                layer.translation_x.normal_(0, 0.3)
                layer.rotation.normal_(0, 0.3)
    return net.eval()


def test_peak_bytes_sees_the_largest_live_set() -> None:
    def work() -> None:
        a = torch.empty(2**18)  # 1 MiB of float32
        b = torch.empty(2**19)  # 2 MiB, while a is alive
        del a, b
        c = torch.empty(2**19)  # 2 MiB after both were freed
        del c

    assert peak_bytes(work, CPU) == pytest.approx(3 * 2**20, rel=0.01)


def _verify_peak(textures: int, modes: tuple[str, ...]) -> int:
    config = VerifyConfig(
        modes=modes, textures=textures, directions=8, speeds=(1.0, 2.0), rotations=(5.0,), zooms=(1.1,)
    )
    net = _net()
    return peak_bytes(lambda: verify_model(net, num_frames=8, size=32, config=config, device="cpu", batch_size=4), CPU)


@pytest.mark.parametrize("modes", [("image",), ("layer",)])
def test_peak_memory_does_not_grow_with_textures(modes: tuple[str, ...]) -> None:
    """N and 2N texture views: the same peak within 10 % (the whole set of 2N views of 21 clips would be 16 MB
    more in image mode, 6 MB more in layer mode: what the unstreamed measurement held)."""
    small, large = _verify_peak(8, modes), _verify_peak(16, modes)
    assert large <= 1.1 * small, (small, large)


def test_peak_memory_does_not_grow_with_layers() -> None:
    net = _net()
    motions = tuple(standard_stimuli(4, (1.0,), (5.0,), (1.1,)))
    g = torch.Generator().manual_seed(0)
    stimuli = StimulusSet(noise_texture(3, 64, generator=g), torch.rand(4, 2, generator=g) * 64, motions, 6, 20)
    names = [n for n, m in net.named_modules() if isinstance(m, Conv3T)]

    def peak(layers: list[str]) -> int:
        return peak_bytes(lambda: stream_energies(net, layers, stimuli, 4), CPU)

    one, every = peak(names[:1]), peak(names)
    assert every <= 1.1 * one, (one, every)


@pytest.mark.parametrize("batch", [1, 4, 7])
def test_streamed_energies_equal_the_whole_set_computation(batch: int) -> None:
    """Reference: every clip at once, energies averaged over views, centre variance over views x time x window."""
    layer = _net()[0]
    motions = tuple(standard_stimuli(4, (1.0,), (5.0,), (1.1,)))
    g = torch.Generator().manual_seed(1)
    views = 3
    stimuli = StimulusSet(noise_texture(3, 64, generator=g), torch.rand(views, 2, generator=g) * 64, motions, 8, 16)
    with torch.no_grad():
        out = layer(stimuli.render(0, len(stimuli))).double()  # (V * M, C, T, H, W)
    m = len(motions)
    full = response_energy(out, 0.25).unflatten(0, (views, m)).mean(dim=0)
    window = out[:, :, 2:6, centre_window(16, 2), centre_window(16, 2)].flatten(2).unflatten(0, (views, m))
    centre = window.permute(1, 2, 0, 3).flatten(2).var(dim=2, unbiased=False)
    acc, _ = stream_energies(layer, [""], stimuli, batch)
    got = acc[""].result(views)
    torch.testing.assert_close(got[..., 0], full, rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(got[..., 1], centre, rtol=1e-5, atol=1e-9)


def test_rendered_batches_are_the_same_clips_whatever_the_split() -> None:
    motions = tuple(standard_stimuli(4, (1.0,), (5.0,), (1.1,)))
    g = torch.Generator().manual_seed(2)
    s = StimulusSet(
        noise_texture(3, 32, generator=g), torch.rand(3, 2, generator=g) * 32, motions, 4, 12, (0.4,) * 3, (0.2,) * 3
    )
    whole = s.render(0, len(s))
    parts = torch.cat([s.render(a, min(a + 5, len(s))) for a in range(0, len(s), 5)])
    torch.testing.assert_close(parts, whole, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4GB", 4 * 10**9), ("512MB", 512 * 10**6), ("1.5GiB", int(1.5 * 2**30)), ("4g", 4 * 10**9), (2048, 2048)],
)
def test_parse_memory(text: str | int, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["four GB", "4 parsecs", "0GB", ""])
def test_parse_memory_rejects_with_the_argument_name(text: str) -> None:
    with pytest.raises(ValueError, match="max_memory"):
        parse_memory(text)


def test_default_budget_is_a_fraction_of_meminfo_available(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       1000 kB\nMemAvailable:    4000000 kB\n")
    assert available_bytes(CPU, meminfo) == 4000000 * 1024
    assert memory_budget(CPU, meminfo=meminfo).bytes == 4000000 * 1024 // 4  # 25 %
    meminfo.write_text("MemAvailable:   40000000 kB\n")
    assert memory_budget(CPU, meminfo=meminfo).bytes == 2 * 10**9  # 25 % would be 10.24 GB: the CPU cap
    budget = memory_budget(CPU, "3GB", meminfo=meminfo)
    assert budget.bytes == 3 * 10**9 and budget.source == "--max-memory"


def test_a_clip_that_does_not_fit_names_the_option() -> None:
    with pytest.raises(MemoryBudgetError, match="--max-memory"):
        plan_batch(2000, 0, MemoryBudget(1000, "test"), 32, "verification", "the stimulus clip")
    assert plan_batch(100, 50, MemoryBudget(1000, "test"), 32, "v", "o") == 9  # (1000 - 50) // 100
    with pytest.raises(MemoryBudgetError, match="--max-memory"):
        config = VerifyConfig(modes=("image",), textures=1, directions=4, speeds=(1.0,), rotations=(5.0,), zooms=(1.1,))
        verify_model(_net(), num_frames=6, size=20, config=config, device="cpu", max_memory="1kB")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_a_clear_error(name: str) -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device(name)


def test_device_names() -> None:
    assert resolve_device("cpu") == CPU
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device: expected auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")


def test_out_of_memory_retries_with_half_the_batch() -> None:
    done: list[tuple[int, int]] = []
    said: list[str] = []

    def work(start: int, stop: int) -> None:
        if stop - start > 3:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        done.append((start, stop))

    last = run_in_batches(10, 8, work, said.append)
    assert done == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]  # 8 -> 4 -> 2, every item once
    assert last == 2
    assert said == [
        "GPU out of memory at batch size 8: retrying with batch size 4",
        "GPU out of memory at batch size 4: retrying with batch size 2",
    ]

    def never(start: int, stop: int) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    with pytest.raises(MemoryBudgetError, match="batch size 1"):
        run_in_batches(3, 2, never)


def test_image_mode_shows_the_model_clips_of_its_own_rectangular_size() -> None:
    # a 150 x 224 model was shown 224 x 224 stimuli before: half again the pixels of its clips, and not its input
    net, shapes = _net(), []
    net.register_forward_pre_hook(lambda _m, args: shapes.append(tuple(args[0].shape[2:])))
    config = VerifyConfig(modes=("image",), textures=1, directions=4, speeds=(1.0,), rotations=(5.0,), zooms=(1.1,))
    result = verify_model(net, num_frames=6, size=(12, 20), config=config, device="cpu", batch_size=4)
    assert set(shapes) == {(6, 12, 20)}
    assert result.config["stimulus_size"] == [12, 20]
    assert set(result.channels["mode"]) == {"image"} and result.channels["translation_index"].notna().all()
