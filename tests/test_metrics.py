"""Tests for predrnn_tf.metrics against independent NumPy / scikit-image references."""

import numpy as np
import pytest

from predrnn_tf.evaluation import metrics


def _random_pair(seed, shape, noise=0.1):
    rng = np.random.default_rng(seed)
    truth = rng.random(shape).astype(np.float32)
    prediction = (truth + noise * rng.standard_normal(shape)).astype(np.float32)
    return truth, prediction


def _official_frame_mse(truth, prediction):
    """Transcription of predrnn-pytorch trainer.test: clip, square, sum over the batch."""
    clipped = np.minimum(np.maximum(prediction, 0), 1)
    return np.square(truth - clipped).sum()


def test_sum_errors_match_official_loop():
    truth, prediction = _random_pair(0, (3, 16, 16, 1), noise=0.4)
    sse = metrics.sum_squared_error(truth, prediction).numpy()
    sae = metrics.sum_absolute_error(truth, prediction).numpy()
    assert sse.shape == (3,)
    np.testing.assert_allclose(sse.sum(), _official_frame_mse(truth, prediction), rtol=1e-5)
    clipped = np.clip(prediction, 0, 1)
    np.testing.assert_allclose(sae, np.abs(truth - clipped).sum(axis=(1, 2, 3)), rtol=1e-5)
    assert prediction.max() > 1 and prediction.min() < 0  # the clip mattered


def test_truncate_to_uint8_truncates_not_rounds():
    values = np.array([0.0, 0.999 / 255, 1.9 / 255, 0.5, 1.0, 1.2], np.float32)
    np.testing.assert_array_equal(metrics.truncate_to_uint8(values).numpy(),
                                  [0, 0, 1, 127, 255, 255])
    levels = np.arange(256, dtype=np.float32) / np.float32(255)
    np.testing.assert_array_equal(metrics.truncate_to_uint8(levels).numpy(), np.arange(256))


def test_psnr_matches_official_batch_psnr():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 256, (4, 12, 10, 3), dtype=np.uint8)
    prediction = rng.integers(0, 256, (4, 12, 10, 3), dtype=np.uint8)
    difference = prediction.astype(np.int32) - truth.astype(np.int32)
    mse = np.sum(difference ** 2, axis=(1, 2, 3), dtype=np.float32) / float(truth[0].size)
    expected = 20 * np.log10(255) - 10 * np.log10(mse)
    np.testing.assert_allclose(metrics.psnr_uint8(truth, prediction).numpy(), expected, rtol=1e-5)


def test_psnr_of_perfect_frame_is_capped_at_one_level_error():
    frame = np.full((1, 8, 8, 1), 100, np.uint8)
    one_off = frame.copy()
    one_off[0, 0, 0, 0] = 101
    perfect = metrics.psnr_uint8(frame, frame).numpy()
    assert np.isfinite(perfect).all()
    np.testing.assert_allclose(perfect, metrics.psnr_uint8(frame, one_off).numpy())


@pytest.mark.parametrize("shape", [(3, 20, 24, 1), (2, 16, 16, 3), (2, 7, 9, 1)])
def test_ssim_matches_scikit_image(shape):
    skimage_metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, shape).astype(np.float64)
    truth = base.astype(np.uint8)
    noisy = np.clip(base + rng.normal(0, 40, shape), 0, 255).astype(np.uint8)
    ours = metrics.ssim_uint8(truth, noisy).numpy()
    for index in range(shape[0]):
        expected = skimage_metrics.structural_similarity(
            noisy[index], truth[index], channel_axis=-1, data_range=255)
        assert abs(ours[index] - expected) < 1e-4, (index, ours[index], expected)
    assert np.all(ours < 0.99)  # noise lowers SSIM: the test can fail


def test_ssim_keeps_leading_axes_and_rejects_small_frames():
    truth = np.zeros((2, 3, 8, 8, 1), np.uint8)
    assert metrics.ssim_uint8(truth, truth).numpy().shape == (2, 3)
    np.testing.assert_allclose(metrics.ssim_uint8(truth, truth).numpy(), 1.0)
    with pytest.raises(ValueError, match="at least 7x7"):
        metrics.ssim_uint8(np.zeros((1, 5, 8, 1)), np.zeros((1, 5, 8, 1)))


def _official_reference(truth, prediction):
    """Per-frame MSE/PSNR averaged over sequences, as the official test loop does."""
    batch, length = truth.shape[:2]
    mse, psnr = np.zeros(length), np.zeros(length)
    for frame in range(length):
        x = truth[:, frame]
        gx = np.clip(prediction[:, frame], 0, 1)
        mse[frame] = np.square(x - gx).sum() / batch
        real = np.uint8(x * 255).astype(np.int32)
        pred = np.uint8(gx * 255).astype(np.int32)
        frame_mse = np.sum((pred - real) ** 2, axis=(1, 2, 3)) / float(real[0].size)
        psnr[frame] = np.mean(20 * np.log10(255) - 10 * np.log10(frame_mse))
    return mse, psnr


def test_frame_metrics_streams_like_one_big_batch():
    truth, prediction = _random_pair(4, (6, 3, 16, 16, 1), noise=0.2)
    whole = metrics.FrameMetrics(3, thresholds=())
    whole.update(truth, prediction)
    streamed = metrics.FrameMetrics(3, thresholds=())
    streamed.update(truth[:4], prediction[:4])
    streamed.update(truth[4:], prediction[4:])
    a, b = whole.result(), streamed.result()
    assert a["num_sequences"] == b["num_sequences"] == 6
    for name in ("mse", "mae", "psnr", "ssim"):
        np.testing.assert_allclose(a["per_frame"][name], b["per_frame"][name], rtol=1e-9)
        assert len(a["per_frame"][name]) == 3
    expected_mse, expected_psnr = _official_reference(truth, prediction)
    np.testing.assert_allclose(a["per_frame"]["mse"], expected_mse, rtol=1e-5)
    np.testing.assert_allclose(a["per_frame"]["psnr"], expected_psnr, rtol=1e-5)
    np.testing.assert_allclose(a["metrics"]["mse"], expected_mse.mean(), rtol=1e-5)
    np.testing.assert_allclose(a["metrics"]["mse_per_sequence"], expected_mse.sum(), rtol=1e-5)
    assert "csi_30" not in a["metrics"] and a["counts"] == {}


def test_frame_metrics_radar_scores_use_value_mapping_and_no_data():
    mapping = {"units": "dBZ", "scale": 0.5, "offset": -32.0}
    # pixel p -> 0.5 p - 32 dBZ: 30 dBZ is pixel 124, 40 dBZ is pixel 144.
    truth = np.zeros((1, 2, 8, 8, 1), np.float32)
    prediction = np.zeros_like(truth)
    truth[0, 0, :2] = 150 / 255  # 43 dBZ: 16 observed pixels in frame 0
    prediction[0, 0, :1] = 150 / 255  # 8 forecast pixels, all hits
    truth[0, 1, 0, 0] = 255 / 255  # no-data pixel, must not count
    prediction[0, 1, 0, 0] = 150 / 255
    tracker = metrics.FrameMetrics(2, value_mapping=mapping, thresholds=(30, 40, 50),
                                   fss_scales=(3,), excluded_pixel_values=(255,))
    tracker.update(truth, prediction)
    result = tracker.result()
    assert result["counts"]["30"]["hits"] == [8, 0]
    assert result["counts"]["30"]["misses"] == [8, 0]
    assert result["counts"]["30"]["false_alarms"] == [0, 0]
    assert result["counts"]["30"]["correct_negatives"] == [48, 63]
    assert result["per_frame"]["csi_30"][0] == pytest.approx(0.5)
    assert result["per_frame"]["pod_40"][0] == pytest.approx(0.5)
    assert np.isnan(result["per_frame"]["csi_50"][0])
    assert result["metrics"]["csi_30"] == pytest.approx(0.5)  # frame 1 undefined, skipped
    assert 0 < result["per_frame"]["fss_30_3"][0] < 1


def test_frame_metrics_rejects_bad_shapes():
    tracker = metrics.FrameMetrics(2)
    with pytest.raises(ValueError, match="expected 2 forecast frames"):
        tracker.update(np.zeros((1, 3, 8, 8, 1)), np.zeros((1, 3, 8, 8, 1)))
    with pytest.raises(ValueError, match="same shape"):
        tracker.update(np.zeros((1, 2, 8, 8, 1)), np.zeros((1, 2, 8, 9, 1)))
    with pytest.raises(ValueError, match="before any update"):
        tracker.result()
