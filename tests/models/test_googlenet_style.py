"""GoogLeNet style="authors": the three settings in which the authors' GoogLeNet differs from ours."""

from __future__ import annotations

import pytest
import torch

from conv3t.models import PAPER_PARAMETER_COUNTS, count_parameters, create_model
from conv3t.models.googlenet import minimum_clip_size


def _model(style: str, aux_logits: bool = True):
    with torch.device("meta"):
        return create_model("googlenet_3t", 27, style=style, aux_logits=aux_logits)


@pytest.mark.parametrize("style", ["torchvision", "authors"])
def test_table_1_counts_do_not_depend_on_the_style(style):
    for name, counts in PAPER_PARAMETER_COUNTS.items():
        if name.startswith("googlenet"):
            for classes, expected in counts.items():
                with torch.device("meta"):
                    model = create_model(name, classes, style=style)
                assert count_parameters(model) == expected


def test_batchnorm_eps_and_max_pool_rounding():
    ours, theirs = _model("torchvision"), _model("authors")
    assert {m.eps for m in ours.modules() if isinstance(m, torch.nn.BatchNorm3d)} == {1e-3}
    assert {m.eps for m in theirs.modules() if isinstance(m, torch.nn.BatchNorm3d)} == {1e-5}
    # after conv1 (stride 2, padding 3) a 150 x 224 frame is 75 x 112; a 168 x 224 one 84 x 112.
    # maxpool1 (3, stride 2): floor((n - 3) / 2) + 1 (theirs) vs rounded up (ours): width 55 vs 56, height 41 vs 42
    for model, width, height in ((ours, 56, 42), (theirs, 55, 41)):
        assert model.maxpool1(torch.zeros(1, 1, 1, 84, 112, device="meta")).shape[-2:] == (height, width)


def test_authors_aux_pooling_fits_only_the_paper_clip_sizes():
    theirs = _model("authors")
    # inception4a's output at 30 x 150 x 224 (and 30 x 168 x 224): T 30 -> 15 -> 7; H 150 -> 75 -> 37 -> 18 -> 8
    # (168 -> 84 -> 41 -> 20 -> 9); W 224 -> 112 -> 55 -> 27 -> 13; 5x5x5 / stride 3 -> (1, 2, 3) positions
    for h in (8, 9):
        assert theirs.aux1.avgpool(torch.zeros(1, 512, 7, h, 13, device="meta")).shape[2:] == (1, 2, 3)
    with pytest.raises(ValueError, match="30 x 150 x 224"):
        theirs.aux1(torch.zeros(1, 512, 4, 4, 4))
    ours = _model("torchvision")
    assert ours.aux1.avgpool(torch.zeros(1, 512, 4, 4, 4, device="meta")).shape[2:] == (1, 2, 3)


def test_minimum_clip_size_follows_the_rounding():
    assert minimum_clip_size(2, "torchvision") == (7, 31, 31)
    assert minimum_clip_size(2, "authors") == (13, 61, 61)
    model = create_model("googlenet_3t", 3, style="authors", aux_logits=False).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 13, 61, 61)).shape == (1, 3)
    with pytest.raises(ValueError, match=r"at least \(13, 61, 61\)"):
        model(torch.zeros(1, 3, 13, 60, 61))
    with pytest.raises(ValueError, match="style must be one of"):
        create_model("googlenet_3t", 3, style="tf")
