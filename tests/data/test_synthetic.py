import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from conv3t.data import (
    APPEARANCE_CLASSES,
    MOTION_CLASSES,
    HorizontalFlip,
    SyntheticMotionDataset,
    denormalize,
)


def test_shapes_classes_and_labels():
    ds = SyntheticMotionDataset(20, num_frames=8, size=48)
    assert ds.classes == list(MOTION_CLASSES) and ds.num_classes == 9 and len(ds) == 20
    clip, label = ds[10]
    assert clip.shape == (3, 8, 48, 48) and clip.dtype == torch.float32 and label == 1
    assert [ds[i][1] for i in range(9)] == list(range(9))
    rect = SyntheticMotionDataset(2, num_frames=4, size=(32, 40))
    assert rect[0][0].shape == (3, 4, 32, 40)
    assert SyntheticMotionDataset(2, task="appearance").classes == list(APPEARANCE_CLASSES)


def test_deterministic_per_seed_and_index():
    a = SyntheticMotionDataset(30, num_frames=6, size=32, seed=3)
    b = SyntheticMotionDataset(30, num_frames=6, size=32, seed=3)
    c = SyntheticMotionDataset(30, num_frames=6, size=32, seed=4)
    assert torch.equal(a[7][0], b[7][0]) and torch.equal(a[7][0], a[7][0])
    assert not torch.equal(a[7][0], c[7][0])
    assert not torch.equal(a[7][0], a[16][0])  # same class, other clip
    torch.manual_seed(0)  # torch's global RNG plays no part
    assert torch.equal(a[7][0], b[7][0])


def test_normalisation_and_pixel_range():
    raw = SyntheticMotionDataset(3, num_frames=4, size=32, normalize=False)
    norm = SyntheticMotionDataset(3, num_frames=4, size=32)
    x = raw[1][0]
    assert x.min() >= 0 and x.max() <= 1
    assert torch.allclose(denormalize(norm[1][0]), x, atol=1e-5)


def test_background_is_static_and_only_the_object_moves():
    ds = SyntheticMotionDataset(9, num_frames=12, size=64)
    for i in range(9):
        rgb, alpha, _ = ds.render(i)
        outside = (alpha == 0).all(0)  # pixels the object never touches
        assert outside.float().mean() > 0.3
        still = rgb[:, :, outside]
        assert torch.equal(still, still[:, :1].expand_as(still))


def centroid(alpha):
    ys, xs = torch.meshgrid(torch.arange(alpha.shape[-2]), torch.arange(alpha.shape[-1]), indexing="ij")
    m = alpha.sum((-1, -2))
    return torch.stack([(alpha * xs).sum((-1, -2)) / m, (alpha * ys).sum((-1, -2)) / m], -1).numpy()


@pytest.mark.parametrize("cls", ["translate_left", "translate_right", "translate_up", "translate_down", "static"])
def test_translation_ground_truth_matches_the_pixels(cls):
    ds = SyntheticMotionDataset(36, num_frames=16, size=64, seed=1)
    for i in range(MOTION_CLASSES.index(cls), 36, 9):
        _rgb, alpha, truth = ds.render(i)
        assert truth.class_name == cls
        # object centroid measured on the rendered coverage (all shapes are centred on their pose)
        np.testing.assert_allclose(centroid(alpha), truth.center, atol=0.35)
        step = truth.translation
        assert np.allclose(step, step[0])  # constant speed
        direction = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}.get(cls.split("_")[-1], (0, 0))
        speed = np.linalg.norm(step[0])
        np.testing.assert_allclose(step[0], np.array(direction) * speed, atol=1e-9)
        if cls != "static":
            assert 0.22 * 64 / 15 - 1e-9 <= speed <= 0.5 * 64 / 15 + 1e-9
        assert np.all(truth.rotation == 0) and np.all(truth.zoom == 1)
        # the whole object stays in the frame
        assert alpha.sum((-1, -2)).min() > 0.95 * alpha.sum((-1, -2)).max()


def match_error(a, b, mask):
    return float(((a - b) ** 2 * mask).sum())


@pytest.mark.parametrize("cls", ["rotate_cw", "rotate_ccw"])
def test_rotation_sign_is_clockwise_positive(cls):
    ds = SyntheticMotionDataset(18, num_frames=6, size=64, normalize=False, seed=2)
    flip = HorizontalFlip(p=1.0, label_map=ds.flip_label_map)
    for i in range(MOTION_CLASSES.index(cls), 18, 9):
        rgb, alpha, truth = ds.render(i)
        w = float(truth.rotation[0])
        assert (w > 0) == (cls == "rotate_cw") and 4 <= abs(w) <= 30
        cx, cy = truth.center[0].tolist()
        # torchvision rotates counter-clockwise for positive angles: clockwise w is angle -w
        f0, f1 = rgb[:, 0], rgb[:, 1]
        mask = alpha[1].unsqueeze(0)
        right = TF.rotate(f0, -w, interpolation=TF.InterpolationMode.BILINEAR, center=[cx, cy])
        wrong = TF.rotate(f0, w, interpolation=TF.InterpolationMode.BILINEAR, center=[cx, cy])
        assert match_error(right, f1, mask) < 0.5 * match_error(wrong, f1, mask)
        # mirrored, the same clip turns the other way and the label follows
        mirrored, label = flip(rgb, truth.label)
        assert ds.classes[label] == ("rotate_ccw" if cls == "rotate_cw" else "rotate_cw")
        m0, m1, mm = mirrored[:, 0], mirrored[:, 1], alpha[1].flip(-1).unsqueeze(0)
        mc = [63 - cx, cy]
        flipped_right = TF.rotate(m0, w, interpolation=TF.InterpolationMode.BILINEAR, center=mc)
        flipped_wrong = TF.rotate(m0, -w, interpolation=TF.InterpolationMode.BILINEAR, center=mc)
        assert match_error(flipped_right, m1, mm) < 0.5 * match_error(flipped_wrong, m1, mm)


@pytest.mark.parametrize("cls", ["zoom_in", "zoom_out"])
def test_zoom_ground_truth_matches_object_area(cls):
    ds = SyntheticMotionDataset(18, num_frames=16, size=64, seed=5)
    for i in range(MOTION_CLASSES.index(cls), 18, 9):
        _, alpha, truth = ds.render(i)
        area = alpha.sum((-1, -2)).numpy()
        np.testing.assert_allclose(area / area[0], truth.scale**2, rtol=0.06)
        z = truth.zoom
        assert np.allclose(z, z[0]) and ((z[0] > 1) == (cls == "zoom_in"))
        total = truth.scale[-1]
        assert 1.6 - 1e-9 <= (total if cls == "zoom_in" else 1 / total) <= 2.4 + 1e-9
        np.testing.assert_allclose(centroid(alpha), truth.center, atol=0.35)


def test_ground_truth_is_cheap_and_equals_rendered_truth():
    ds = SyntheticMotionDataset(12, num_frames=8, size=48, seed=9)
    for i in (0, 4, 7, 11):
        a, b = ds.ground_truth(i), ds.render(i)[2]
        assert a.class_name == b.class_name and a.shape == b.shape
        np.testing.assert_array_equal(a.center, b.center)
        assert a.center.shape == (8, 2) and a.translation.shape == (7, 2)
        assert a.angle.shape == (8,) and a.rotation.shape == (7,) and a.zoom.shape == (7,)


def test_flip_label_map_per_task():
    motion = SyntheticMotionDataset(9)
    assert motion.flip_label_map == {0: 1, 1: 0, 4: 5, 5: 4}
    assert SyntheticMotionDataset(9, task="appearance").flip_label_map == {}
    flipped = SyntheticMotionDataset(9, transform=HorizontalFlip(1.0, motion.flip_label_map))
    assert [flipped[i][1] for i in range(9)] == [1, 0, 2, 3, 5, 4, 6, 7, 8]
    assert torch.equal(flipped[2][0], motion[2][0].flip(-1))


def test_appearance_class_is_shape_and_colour():
    ds = SyntheticMotionDataset(18, num_frames=4, size=64, task="appearance", normalize=False)
    for i in range(18):
        rgb, alpha, truth = ds.render(i)
        colour, shape = truth.class_name.split("_")
        assert truth.shape == shape
        inside = alpha[0] > 0.99
        mean = rgb[:, 0][:, inside].mean(1)
        assert int(mean.argmax()) == {"red": 0, "green": 1, "blue": 2}[colour]


def test_bad_arguments():
    with pytest.raises(ValueError, match="task"):
        SyntheticMotionDataset(4, task="colour")
    with pytest.raises(ValueError, match="num_frames"):
        SyntheticMotionDataset(4, num_frames=1)
    with pytest.raises(IndexError):
        SyntheticMotionDataset(4)[4]


def test_default_clips_are_unchanged():
    """The default clips are what RESULTS.md's experiments were run on: they must not drift with new options.

    Reference values taken before any rendering option existed (``synthetic_reference.json``); float sums are
    compared to 1e-6 relative (numpy's SIMD sin/cos may differ in the last bit between CPUs), one pixel exactly
    to 1e-6, which no change of a shape, colour, marker or motion passes.
    """
    import json
    from pathlib import Path

    ref = json.loads((Path(__file__).with_name("synthetic_reference.json")).read_text())
    for key in ("motion_8x32", "appearance_16x64"):
        ds = SyntheticMotionDataset(**ref[key]["kwargs"])
        for i, (label, total, squares, pixel) in enumerate(ref[key]["rows"]):
            clip, got_label = ds[i]
            x = clip.numpy().astype(np.float64)
            assert got_label == label, (key, i)
            assert x.sum() == pytest.approx(total, rel=1e-6, abs=1e-3), (key, i)
            assert (x**2).sum() == pytest.approx(squares, rel=1e-6), (key, i)
            assert x[1, x.shape[1] // 2, 13, 17] == pytest.approx(pixel, abs=1e-6), (key, i)
