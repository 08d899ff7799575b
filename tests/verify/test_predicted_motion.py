"""predicted_motion reads only the steps that act on the input: a layer whose kernel slices never both meet
real frames (e.g. a 3-deep kernel on a 1-frame feature map) predicts no motion, so verification does not
judge its parameters against a preference that comes from the layers before it."""

import numpy as np
import torch

from conv3t.models import create_model
from conv3t.nn import randomize_temporal_parameters
from conv3t.readout import temporal_parameters
from conv3t.verify import predicted_motion

PRED = ["pred_vx", "pred_vy", "pred_rotation_cw_deg", "pred_zoom_percent"]
LAYER_PRED = [f"{c}_layer" for c in PRED]  # layer mode drives each layer with D * dilation + 6 frames


def _model():
    model = create_model("resnet10_3t", 3, base_width=4, stem_temporal_stride=1)
    randomize_temporal_parameters(model, 0.3, generator=torch.Generator().manual_seed(0), scale_bound=0.1)
    return model.eval()


def test_layer_without_temporal_effect_predicts_nothing():
    model = _model()
    short = (8, 32, 32)
    table = temporal_parameters(model, input_size=short)
    in_clip = table.groupby("layer", sort=False)["step_in_clip"].any()
    dead = [layer for layer, any_step in in_clip.items() if not any_step]
    live = [layer for layer, any_step in in_clip.items() if any_step]
    assert dead and "conv1" in live  # the deepest 3x3x3 layer sees one frame at 8 input frames
    pred = predicted_motion(model, short)
    for layer in dead:
        assert np.all(pred.loc[pred["layer"] == layer, PRED].to_numpy() == 0), layer
        assert np.abs(pred.loc[pred["layer"] == layer, LAYER_PRED].to_numpy()).max() > 0, layer
    assert np.abs(pred.loc[pred["layer"] == "conv1", PRED].to_numpy()).max() > 0


def test_the_same_layer_predicts_motion_on_a_long_clip():
    model = _model()
    short = temporal_parameters(model, input_size=(8, 32, 32))
    dead = [
        layer for layer, any_step in short.groupby("layer", sort=False)["step_in_clip"].any().items() if not any_step
    ]
    pred = predicted_motion(model, (64, 32, 32))
    for layer in dead:
        assert np.abs(pred.loc[pred["layer"] == layer, PRED].to_numpy()).max() > 0, layer
