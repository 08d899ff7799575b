"""Registry: names, Table 1 parameter counts, keyword checking."""

from __future__ import annotations

import pytest
import torch

from conv3t.models import (
    CONVERTED_FAMILIES,
    PAPER_PARAMETER_COUNTS,
    GoogLeNet,
    ResNet,
    count_parameters,
    create_model,
    list_models,
    model_spec,
)

# Table 1 of Ras et al. (auxiliary heads counted), typed in from the paper.
TABLE_1 = {
    ("googlenet_3t", 27): 7_419_121,
    ("googlenet_3t", 101): 7_646_671,
    ("googlenet_3d", 27): 14_078_833,
    ("googlenet_3d", 101): 14_306_383,
    ("resnet18_3t", 27): 11_222_619,
    ("resnet18_3t", 101): 11_260_581,
    ("resnet18_3d", 27): 33_217_755,
    ("resnet18_3d", 101): 33_255_717,
}


def test_list_models():
    names = list_models()
    assert names[:4] == ["resnet18_3t", "resnet18_3d", "googlenet_3t", "googlenet_3d"]
    hand_written = {"resnet18_3t", "resnet18_3d", "googlenet_3t", "googlenet_3d", "resnet10_3t", "resnet10_3d"}
    converted = {f"{family}_{kind}" for family in CONVERTED_FAMILIES for kind in ("3t", "3d")}
    assert set(names) == hand_written | converted
    assert {"resnet50_3t", "mobilenet_v3_small_3t", "efficientnet_b0_3d"} <= converted
    assert [model_spec(n).in_paper for n in names] == [True] * 4 + [False] * (len(names) - 4)


@pytest.mark.parametrize(("name", "classes"), sorted(TABLE_1))
def test_parameter_counts_equal_table_1(name, classes):
    # Counting needs no values: build on the meta device (the test_*_count_* tests build real models).
    with torch.device("meta"):
        model = create_model(name, classes)
    assert count_parameters(model) == TABLE_1[name, classes]
    assert PAPER_PARAMETER_COUNTS[name][classes] == TABLE_1[name, classes]


def test_count_parameters_trainable_only():
    model = create_model("resnet10_3t", 4, base_width=8)
    total = count_parameters(model)
    model.fc.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == total - (64 * 4 + 4)


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"unknown model 'resnet51_3t'.*resnet18_3t.*googlenet_3d.*resnet10_3d"):
        create_model("resnet51_3t", 10)


def test_unknown_keyword_is_rejected_with_the_accepted_ones():
    with pytest.raises(TypeError, match=r"widht.*accepts:.*base_width.*stem_temporal_stride"):
        create_model("resnet10_3t", 10, widht=16)
    with pytest.raises(TypeError, match="transform_input"):
        create_model("resnet18_3d", 10, transform_input=True)
    with pytest.raises(TypeError, match="base_width"):
        create_model("googlenet_3t", 10, base_width=16)


@pytest.mark.parametrize("classes", [0, -3, 2.5, True])
def test_bad_class_count(classes):
    with pytest.raises(ValueError, match="num_classes"):
        create_model("resnet10_3d", classes)  # type: ignore[arg-type]


def test_kwargs_reach_the_model_and_scratch_models_have_no_report():
    with torch.device("meta"):
        small = create_model("resnet10_3t", 9, base_width=16, stem_temporal_stride=1)
        g = create_model("googlenet_3d", 5, aux_logits=False, dropout=0.2, stem_temporal_stride=1)
        r = create_model("resnet18_3t", 5, aux_logits=False)  # ResNets have no auxiliary heads
    assert isinstance(small, ResNet) and small.base_width == 16 and small.conv1.stride == (1, 2, 2)
    assert small.fc.out_features == 9
    assert isinstance(g, GoogLeNet) and g.aux1 is None and g.dropout.p == 0.2 and g.conv1.conv.stride == (1, 2, 2)
    assert isinstance(r, ResNet) and r.variant == "3t"
    assert small.transfer_report is None and g.transfer_report is None
    assert small.training  # like torchvision, models come in training mode


def test_converted_family_refuses_transfer_options_it_cannot_honour(tmp_path) -> None:
    """A converted family copies its 2D weights while it is built, so conv_only / authors' init cannot apply."""
    import torchvision

    path = tmp_path / "mnasnet.pth"
    torch.save(torchvision.models.mnasnet0_5(num_classes=3).state_dict(), path)
    with pytest.raises(ValueError, match="transfer='conv_only'"):
        create_model("mnasnet0_5_3d", num_classes=3, pretrained=str(path), transfer="conv_only")
    with pytest.raises(ValueError, match="init='authors'"):
        create_model("mnasnet0_5_3d", num_classes=3, pretrained=str(path), init="authors")
