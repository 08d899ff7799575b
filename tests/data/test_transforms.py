import numpy as np
import pytest
import torch

from conv3t.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    JESTER_FLIP_LABEL_MAP,
    HorizontalFlip,
    VideoTransform,
    denormalize,
    normalize,
)
from conv3t.data.jester import jester_flip_label_map
from conv3t.data.transforms import center_box, cover_box_size, random_box, three_crop_boxes


def test_cover_box_matches_paper_sizes():
    # Jester frame 100 × 176 into 150 × 224 (aspect 0.67): full height, width 100 * 224 / 150 = 149.3
    assert cover_box_size(100, 176, (150, 224)) == (100, 149)
    assert center_box(100, 176, (150, 224)) == (0, 13, 100, 149)
    # UCF101 240 × 320 into 168 × 224: same aspect, the whole frame
    assert center_box(240, 320, (168, 224)) == (0, 0, 240, 320)
    # tall frame into a square: full width, centred vertically
    assert center_box(100, 60, (32, 32)) == (20, 0, 60, 60)


def test_three_crops_along_the_long_free_axis():
    assert three_crop_boxes(100, 176, (150, 224)) == [(0, 0, 100, 149), (0, 13, 100, 149), (0, 27, 100, 149)]
    assert three_crop_boxes(240, 320, (112, 112)) == [(0, 0, 240, 240), (0, 40, 240, 240), (0, 80, 240, 240)]


def test_random_box_scale_range_and_bounds():
    rng = np.random.default_rng(0)
    sides = []
    for _ in range(300):
        top, left, h, w = random_box(240, 320, (112, 112), (0.5, 1.0), rng)
        assert top >= 0 and top + h <= 240 and left >= 0 and left + w <= 320
        assert abs(h - w) <= 1
        sides.append(h)
    assert min(sides) < 130 and max(sides) > 230  # spans 120..240


def test_normalize_values_by_hand():
    frames = torch.zeros(2, 3, 4, 5, dtype=torch.uint8)
    frames[:, 0] = 255  # red channel full
    clip = normalize(frames)
    assert clip.shape == (3, 2, 4, 5) and clip.dtype == torch.float32
    assert torch.allclose(clip[0], torch.tensor((1 - 0.485) / 0.229))
    assert torch.allclose(clip[1], torch.tensor(-0.456 / 0.224))
    assert torch.allclose(clip[2], torch.tensor(-0.406 / 0.225))
    back = denormalize(clip)
    assert torch.allclose(back, frames.permute(1, 0, 2, 3).float() / 255, atol=1e-6)
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406) and IMAGENET_STD == (0.229, 0.224, 0.225)


def test_eval_transform_shape_and_content():
    # left half dark, right half bright: after a centre crop + resize the split stays in the middle
    frames = torch.zeros(6, 3, 100, 176, dtype=torch.uint8)
    frames[..., 88:] = 200
    clip, label = VideoTransform((150, 224), mode="eval")(frames, 3)
    assert clip.shape == (3, 6, 150, 224) and label == 3
    pix = denormalize(clip)[0, 0, 75]
    assert pix[:100].max() < 0.05 and pix[124:].min() > 0.7


def test_multiview_transform_stacks_views_and_crops():
    frames = torch.randint(0, 255, (2, 4, 3, 100, 176), dtype=torch.uint8)  # 2 temporal views
    clip, _ = VideoTransform((32, 48), mode="multiview", spatial_crops=3)(frames, 0)
    assert clip.shape == (6, 3, 4, 32, 48)
    # view-major order: item 3 is view 1's first crop
    ref, _ = VideoTransform((32, 48), mode="eval")(frames[1][..., :, 0:150], 0)  # first box: width 100 * 48 / 32
    assert torch.allclose(clip[3], ref, atol=1e-5)


def test_train_transform_is_random_but_seeded():
    frames = torch.randint(0, 255, (4, 3, 100, 176), dtype=torch.uint8)
    t = VideoTransform((64, 64), mode="train", scale=(0.5, 1.0))
    a, _ = t(frames, 0, rng=np.random.default_rng(5))
    b, _ = t(frames, 0, rng=np.random.default_rng(5))
    c, _ = t(frames, 0, rng=np.random.default_rng(6))
    assert a.shape == (3, 4, 64, 64)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_jester_flip_label_map():
    assert JESTER_FLIP_LABEL_MAP == {0: 1, 1: 0, 6: 7, 7: 6, 14: 15, 15: 14}
    # name-based: a reordered labels file maps by name
    names = ["Turning Hand Counterclockwise", "Thumb Up", "Turning Hand Clockwise", "Swiping Left"]
    assert jester_flip_label_map(names) == {0: 2, 2: 0}


def test_flip_swaps_labels_and_mirrors():
    clip = torch.arange(2 * 3 * 1 * 1 * 4, dtype=torch.float32).view(2, 3, 1, 1, 4)[0]
    flip = HorizontalFlip(p=1.0, label_map=JESTER_FLIP_LABEL_MAP)
    out, label = flip(clip, 0)
    assert label == 1 and torch.equal(out, clip.flip(-1))
    assert flip(clip, 15)[1] == 14
    assert flip(clip, 6)[1] == 7
    assert flip(clip, 3)[1] == 3  # Swiping Up is mirror-symmetric
    never = HorizontalFlip(p=0.0, label_map=JESTER_FLIP_LABEL_MAP)
    assert never(clip, 0)[1] == 0


def test_train_transform_flips_label_with_frames():
    frames = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    frames[..., :8] = 255  # bright left half
    t = VideoTransform((16, 16), mode="train", scale=(1.0, 1.0), flip_p=1.0, flip_label_map={4: 5, 5: 4})
    clip, label = t(frames, 4, rng=np.random.default_rng(0))
    assert label == 5
    assert clip[0, 0, 8, 12] > clip[0, 0, 8, 3]  # now bright on the right


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        VideoTransform((10, 10), mode="test")
    with pytest.raises(ValueError, match="spatial_crops"):
        VideoTransform((10, 10), mode="multiview", spatial_crops=2)
    with pytest.raises(ValueError, match=r"\(T, 3, H, W\)"):
        normalize(torch.zeros(3, 4, 5, dtype=torch.uint8))
