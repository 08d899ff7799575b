import numpy as np
import pytest

from conv3t.data.sampling import (
    center_indices,
    effective_stride,
    multiview_indices,
    sample_indices,
    train_indices,
)


def test_train_window_is_contiguous_and_inside():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(200):
        idx = train_indices(50, 30, rng=rng)
        assert idx.shape == (30,)
        assert np.all(np.diff(idx) == 1)
        assert idx[0] >= 0 and idx[-1] <= 49
        starts.add(int(idx[0]))
    assert starts == set(range(21))  # every start 0..20 is drawn


def test_train_window_with_stride():
    rng = np.random.default_rng(1)
    idx = train_indices(100, 10, stride=3, rng=rng)
    assert np.all(np.diff(idx) == 3) and idx[-1] <= 99


def test_center_window():
    # 50 frames, 30 wanted: free room 20, start 10
    np.testing.assert_array_equal(center_indices(50, 30), np.arange(10, 40))
    np.testing.assert_array_equal(center_indices(51, 30), np.arange(10, 40))  # floor of 21 / 2
    np.testing.assert_array_equal(center_indices(30, 30), np.arange(30))


def test_stride_is_lowered_to_fit():
    # 30 frames with stride 2 need 59; 40 frames fit stride 1 only (29 * 2 + 1 = 59 > 40)
    assert effective_stride(40, 30, 2) == 1
    assert effective_stride(59, 30, 2) == 2
    assert effective_stride(70, 10, 5) == 5
    assert effective_stride(30, 10, 5) == 3  # (30 - 1) // 9
    np.testing.assert_array_equal(center_indices(30, 10, stride=5), np.arange(0, 28, 3) + 1)


def test_short_video_repeats_last_frame():
    idx = center_indices(12, 30)
    np.testing.assert_array_equal(idx, np.r_[np.arange(12), np.full(18, 11)])
    idx = train_indices(12, 30, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(idx, np.r_[np.arange(12), np.full(18, 11)])


def test_short_video_loop():
    idx = center_indices(12, 30, pad="loop")
    np.testing.assert_array_equal(idx, np.arange(30) % 12)


def test_single_frame_video_is_not_rejected():
    np.testing.assert_array_equal(center_indices(1, 5), np.zeros(5))


def test_multiview_spreads_windows_evenly():
    idx = multiview_indices(100, 30, views=3)
    assert idx.shape == (3, 30)
    assert [int(i[0]) for i in idx] == [0, 35, 70]  # max start 70
    np.testing.assert_array_equal(multiview_indices(100, 30, views=1)[0], center_indices(100, 30))
    short = multiview_indices(10, 30, views=4)  # short video: all views identical, padded
    assert np.all(short == short[0]) and short[0, -1] == 9


def test_sample_indices_dispatch_and_errors():
    assert sample_indices("train", 40, 8).shape == (1, 8)
    assert sample_indices("eval", 40, 8).shape == (1, 8)
    assert sample_indices("multiview", 40, 8, views=5).shape == (5, 8)
    with pytest.raises(ValueError, match="sampling mode"):
        sample_indices("random", 40, 8)
    with pytest.raises(ValueError, match="at least one frame"):
        center_indices(0, 8)
    with pytest.raises(ValueError, match="pad"):
        center_indices(10, 8, pad="mirror")
