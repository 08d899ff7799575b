"""The verification's stimulus rendering and energy accumulation on (fake) CUDA (issue 28): the clips are
rendered on the model's device, the per-channel reductions come back to the CPU, and the closed form reads
CUDA kernels against CPU covariances, with no CPU tensor meeting a CUDA one (``fake_cuda``, tests/conftest.py).
"""

from __future__ import annotations

import torch
from torch import nn

from conv3t import Conv3T
from conv3t.verify.closed_form import PatchGeometry, layer_energies, patch_covariances
from conv3t.verify.covariance import TextureCovariance
from conv3t.verify.energies import StimulusSet, stream_energies
from conv3t.verify.stimuli import Motion, noise_texture

MOTIONS = (Motion("static"), Motion("translation", vx=1.0), Motion("rotation", rotation_cw_deg=5.0))


def test_rendering_and_sampled_energies_on_cuda(fake_cuda) -> None:  # type: ignore[no-untyped-def]
    model = nn.Sequential(Conv3T(3, 4, 3, padding=1), nn.ReLU(), Conv3T(4, 2, 3, padding=1))
    texture = noise_texture(3, size=64, generator=torch.Generator().manual_seed(0))
    offsets = torch.rand(2, 2, generator=torch.Generator().manual_seed(1)) * 64
    with fake_cuda:
        model.to("cuda").eval()
        # image mode's normalised pixels, and layer mode's raw textures
        for norm in ({"mean": (0.4,) * 3, "std": (0.2,) * 3}, {}):
            stimuli = StimulusSet(texture.to("cuda"), offsets, MOTIONS, 5, 12, **norm)
            assert stimuli.render(0, 4).device.type == "cuda"
            acc, _ = stream_energies(model, ["0", "2"], stimuli, batch_size=4)
            for name in ("0", "2"):
                assert acc[name].view_stats().full.device.type == "cpu"
                assert acc[name].result(stimuli.views).shape == (len(MOTIONS), 4 if name == "0" else 2, 2)


def test_closed_form_energies_of_cuda_kernels(fake_cuda) -> None:  # type: ignore[no-untyped-def]
    layer = Conv3T(3, 4, 3, padding=1)
    geometry = PatchGeometry.of_layer(layer, (9, 11, 11))
    covariance = TextureCovariance.of_noise(256)
    # the covariances are the layer's geometry, computed on the CPU whatever the device (reads values: outside)
    cache = {(geometry, MOTIONS, 2): patch_covariances(geometry, MOTIONS, covariance)}
    with fake_cuda:
        layer.to("cuda")
        with torch.no_grad():
            kernel = layer.kernel()
        assert kernel.device.type == "cuda"
        energies = layer_energies(kernel, geometry, MOTIONS, covariance, cache=cache)
        assert energies.device.type == "cpu" and energies.shape == (len(MOTIONS), 4, 2)
