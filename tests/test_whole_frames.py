"""Whole test composites: the valid extent grown to a multiple, cut with no-data padding."""

import numpy as np
import pytest

from predrnn_tf.data.converters import whole_frames
from predrnn_tf.errors import DataError


def test_extent_at_the_field_edge_is_padded_with_no_data():
    window = np.full((2, 10, 7), np.nan, np.float32)
    window[1, 0:9, 0:7] = 1.0  # valid in the second frame only, touching the top-left
    box, footprint = whole_frames.valid_extent(window, 4)
    assert box == whole_frames.Box(top=-1, left=0, height=12, width=8)
    assert footprint.sum() == 63
    frames = whole_frames.cut(window, box)
    assert frames.shape == (2, 12, 8)
    assert np.isfinite(frames).sum() == 63 and np.isnan(frames[:, 0]).all()
    assert np.isnan(frames[:, :, 7]).all() and np.isfinite(frames[1, 1:10, 0:7]).all()


def test_cutter_drops_windows_with_a_missing_radar_or_dry():
    window = np.zeros((2, 8, 8), np.float32)
    window[:, :, 4:] = 1.0
    cutter = whole_frames.WholeFrameCutter(4, min_valid_fraction=0.6, min_wet_fraction=0.2)
    assert cutter(window).shape == (2, 8, 8)
    half_missing = window.copy()
    half_missing[:, :5] = np.nan
    assert cutter(half_missing) is None
    assert cutter(np.zeros_like(window)) is None
    assert cutter.metadata()["test_image_height"] == 8


def test_no_valid_pixel_is_a_clear_error():
    with pytest.raises(DataError, match="no valid pixel"):
        whole_frames.valid_extent(np.full((1, 4, 4), np.nan), 4)
