"""The real-radar recipe's data path: rain rate in dBR, no-data mask, grid and interval rules,
bad inputs as one-line errors, mixing and augmentation in tf.data, the masked losses."""

from __future__ import annotations

import datetime
import os

import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf import units
from predrnn_tf.data import augmentation, mixing, reader, schema
from predrnn_tf.data.converters import radar_conversion
from predrnn_tf.errors import DataError
from predrnn_tf.models import losses


def write_npy_archive(folder, frames: int, minutes: int = 5, shape=(40, 40), value=2.0,
                      start="201001010000"):
    """Rain-rate fields (mm/h) every ``minutes``; frame k rains ``value * (k + 1)`` on the
    left half; the top-left 8x8 corner has no data (NaN)."""
    os.makedirs(folder, exist_ok=True)
    first = datetime.datetime.strptime(start, "%Y%m%d%H%M")
    for index in range(frames):
        field = np.zeros(shape, np.float32)
        field[:, : shape[1] // 2] = value * (index + 1)
        field[:8, :8] = np.nan
        stamp = first + datetime.timedelta(minutes=minutes * index)
        np.save(os.path.join(folder, f"{stamp:%Y%m%d%H%M}.npy"), field)


def options(tmp_path, **changes) -> radar_conversion.RadarOptions:
    values = dict(input_glob=str(tmp_path / "src" / "*.npy"), output_dir=str(tmp_path / "out"),
                  filename_pattern="%Y%m%d%H%M", name="toy", importer="npy",
                  importer_kwargs='{"unit": "mm/h"}', timestep_minutes=5.0, storage="rain_rate",
                  pixel_km=2.0, source_pixel_km=1.0, interval_minutes=10.0, image_size=16,
                  tile_stride=16, total_length=3, stride=1, test_fraction=0.3,
                  min_valid_fraction=0.5)
    values.update(changes)
    return radar_conversion.RadarOptions(**values)


def test_rain_rate_storage_grid_interval_and_no_data(tmp_path):
    write_npy_archive(tmp_path / "src", 12)
    metadata = radar_conversion.convert_radar(options(tmp_path))
    assert metadata["value_mapping"]["transform"] == "dBR"
    assert metadata["grid"] == {"pixel_km": 2.0, "interval_minutes": 10.0,
                                "source_timestep_minutes": 5.0, "frames_skipped_between": 1}
    assert metadata["schema_version"] == 2 and metadata["image_height"] == 16
    frames, sequence_id = schema.read_split(str(tmp_path / "out"), "toy", "train")[0]
    assert frames.shape == (3, 16, 16, 1)
    rate = units.pixels_to_rain_rate(frames / 255.0, metadata)
    valid = units.valid_pixels(frames / 255.0, metadata)
    top, left = (int(part) for part in sequence_id.split(":")[1:])
    # 40x40 at 1 km -> 20x20 at 2 km; one 16x16 tile centred at (2, 2); corner 4x4 no data.
    assert (top, left) == (2, 2) and not valid[0, :2, :2].any() and valid[0, 3:, 3:].all()
    # Frames 0, 2, 4 of the source (10-minute steps): 2, 6, 10 mm/h on the left half.
    np.testing.assert_allclose(rate[:, 10, 2, 0], [2.0, 6.0, 10.0], rtol=0.02)
    assert rate[0, 10, 12, 0] == 0.0


@pytest.mark.parametrize("change, message", [
    (dict(timestep_minutes=6.0, input_glob=None), "is not a whole multiple"),
    (dict(importer="no_such_importer"), "is neither a built-in importer"),
    (dict(total_length=9), "no window of --total_length=9"),
    (dict(image_size=32), "smaller than one --image_size=32 tile"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, change, message):
    write_npy_archive(tmp_path / "src", 12)
    change = {key: value for key, value in change.items() if value is not None}
    with pytest.raises((ValueError, DataError), match=message) as caught:
        radar_conversion.convert_radar(options(tmp_path, **change))
    assert "\n" not in str(caught.value)
    assert not os.path.exists(tmp_path / "out" / "toy-metadata.json")


def test_archive_without_valid_pixel(tmp_path):
    folder = tmp_path / "src"
    os.makedirs(folder)
    for index in range(6):
        np.save(folder / f"20100101{index * 5:04d}.npy", np.full((40, 40), np.nan, np.float32))
    with pytest.raises(DataError, match="no valid pixel in any frame"):
        radar_conversion.convert_radar(options(tmp_path, test_fraction=0.01,
                                               interval_minutes=5.0))


def test_mixed_units_in_one_archive(tmp_path):
    calls = []

    def importer(path):
        calls.append(path)
        unit = "mm/h" if len(calls) == 1 else "dBZ"
        return np.ones((40, 40), np.float32), {"unit": unit, "transform": None}

    writer = radar_conversion._RainRateWriter(options(tmp_path), importer)
    writer.load("a.npy")
    with pytest.raises(DataError, match=r"mixed units in one dataset: b.npy holds dBZ but "
                                        r"a.npy holds mm/h"):
        writer.load("b.npy")


def test_source_grid_spacing_from_pysteps_metadata():
    opts = radar_conversion.RadarOptions(input_glob="", output_dir="", filename_pattern="%Y")
    assert radar_conversion.source_pixel_km(opts, {"xpixelsize": 500.0,
                                                   "projection": "+proj=aea"}, "f") == 0.5
    assert radar_conversion.source_pixel_km(
        opts, {"xpixelsize": 1.0, "projection": "+proj=stere +a=6378.137"}, "f") == 1.0
    with pytest.raises(DataError, match="pass --source_pixel_km"):
        radar_conversion.source_pixel_km(opts, {"unit": "mm"}, "f")


def write_toy_dataset(folder, name: str, value: int, count: int = 4, size: int = 8,
                      mapping=None):
    with schema.ShardedWriter(folder, name, "train") as writer:
        for _ in range(count):
            writer.write(np.full((3, size, size, 1), value, np.uint8))
    with schema.ShardedWriter(folder, name, "test") as writer:
        writer.write(np.full((3, size, size, 1), value, np.uint8))
    schema.write_metadata(folder, name, {
        "image_height": size, "image_width": size, "channels": 1, "sequence_length": 3,
        "num_train": count, "num_test": 1,
        "value_mapping": mapping or units.rain_rate_mapping(), "grid": {"pixel_km": 2.0}})


def test_mixture_draws_with_the_weights(tmp_path):
    folder = str(tmp_path)
    write_toy_dataset(folder, "a", 10)
    write_toy_dataset(folder, "b", 200, count=40)
    dataset = reader.make_dataset(folder, "a:3,b:1", "train", 50, 3, seed=1, frame_size=8)
    values = np.concatenate([np.asarray(batch)[:, 0, 0, 0, 0] for batch in dataset.take(8)])
    share_a = np.mean(np.isclose(values, 10 / 255.0))
    assert 0.68 < share_a < 0.82  # weight 3 of 4, whatever the sizes (4 vs 40 records)
    test = np.concatenate([np.asarray(batch) for batch in reader.make_dataset(
        folder, "a,b", "test", 4, 3, shuffle=False, repeat=False, drop_remainder=False)])
    assert test.shape[0] == 2


def test_mixture_of_different_units_is_refused(tmp_path):
    write_toy_dataset(str(tmp_path), "a", 10)
    write_toy_dataset(str(tmp_path), "b", 10, mapping=units.hko7_mapping())
    with pytest.raises(DataError, match="mixed units or grids in one dataset: 'b'"):
        mixing.read_metadata(str(tmp_path), "a,b")
    with pytest.raises(ValueError, match="weight of 'b' must be positive"):
        mixing.parse_sources("a,b:0")


def test_augmentation_rotates_flips_and_crops():
    frames = tf.reshape(tf.range(2 * 6 * 6, dtype=tf.int32), [2, 6, 6, 1])
    seen = set()
    tf.random.set_seed(0)
    for _ in range(40):
        out = augmentation.augment_sequence(frames, 4).numpy()
        assert out.shape == (2, 4, 4, 1)
        assert set(out[1].ravel()) <= set(frames.numpy()[1].ravel())
        seen.add(out[0].tobytes())
    assert len(seen) > 10  # symmetries x crop positions
    centre = augmentation.center_crop(frames, 4).numpy()
    np.testing.assert_array_equal(centre, frames.numpy()[:, 1:5, 1:5])
    with pytest.raises(ValueError, match="larger than the stored 6x6"):
        augmentation.make_frame_transform((6, 6, 1), 8, False)


def test_masked_losses_ignore_no_data_and_weight_rain():
    targets = np.full((1, 2, 4, 4, 1), units.rain_rate_to_unit_pixels(1.0), np.float32)
    targets[:, :, 0, 0] = 0.0  # no data
    predictions = targets + 0.1
    predictions[:, :, 0, 0] = 0.9  # a wild value where there is no data
    masked = losses.frame_loss(predictions, targets, "masked_mse").numpy()
    np.testing.assert_allclose(masked, [0.01], rtol=1e-4)
    heavy = targets.copy()
    heavy[:, :, 1:] = units.rain_rate_to_unit_pixels(40.0)
    balanced = losses.frame_loss(heavy + 0.1, heavy, "balanced_mse").numpy()
    assert balanced[0] > 20 * 0.01  # rain rates >= 30 mm/h weigh 30
    plain = losses.frame_loss(predictions, targets, "mse").numpy()
    assert plain[0] > masked[0]


def test_rain_rate_loss_is_the_squared_error_in_mm_per_hour_over_valid_pixels():
    rng = np.random.default_rng(3)
    rates = rng.choice([0.0, 0.5, 2.0, 12.0], size=(2, 3, 4, 4, 1))
    targets = units.rain_rate_to_unit_pixels(rates).astype(np.float32)
    targets[:, :, 0, 0] = 0.0  # no data
    predictions = np.clip(targets + rng.normal(0, 0.05, targets.shape), 0.02, 1.0)
    predictions = predictions.astype(np.float32)
    predictions[:, :, 0, 0] = 0.9  # a wild value where there is no data
    metadata = {"value_mapping": units.rain_rate_mapping()}
    predicted_rate = np.power(10.0, (predictions * 255.0 * units.DBR_SCALE +
                                     units.DBR_OFFSET) / 10.0)
    error = np.square(predicted_rate - units.pixels_to_rain_rate(targets, metadata))
    valid = units.valid_pixels(targets, metadata)
    expected = (error * valid).sum(axis=(1, 2, 3, 4)) / valid.sum(axis=(1, 2, 3, 4))
    loss = losses.frame_loss(predictions, targets, "rain_rate_mse").numpy()
    np.testing.assert_allclose(loss, expected, rtol=1e-4)
    # A forecast below the no-rain pixel still has a gradient towards 0 mm/h.
    low = tf.Variable(np.full((1, 1, 2, 2, 1), 0.5 / 255.0, np.float32))
    with tf.GradientTape() as tape:
        value = losses.frame_loss(low, np.full((1, 1, 2, 2, 1), 1 / 255.0, np.float32),
                                  "rain_rate_mse")
    assert float(tf.reduce_sum(tape.gradient(value, low))) > 0.0


def test_mixture_of_different_grids_is_refused(tmp_path):
    write_toy_dataset(str(tmp_path), "a", 10)
    write_toy_dataset(str(tmp_path), "b", 10)
    path = schema.metadata_path(str(tmp_path), "b")
    metadata = schema.read_metadata(str(tmp_path), "b")
    metadata["grid"] = {"pixel_km": 1.0}
    schema.write_metadata(str(tmp_path), "b", metadata)
    assert os.path.exists(path)
    with pytest.raises(DataError, match="'b' has grid pixel_km=1.0 but 'a' has 2.0"):
        mixing.read_metadata(str(tmp_path), "a,b")


def test_rain_rate_units_round_trip_and_conversions():
    rate = np.array([np.nan, 0.0, 0.05, 0.5, 1.0, 10.0, 150.0])
    pixels = units.rain_rate_to_pixels(rate)
    assert pixels[0] == units.NO_DATA_PIXEL and pixels[1] == pixels[2] == units.NO_RAIN_PIXEL
    back = units.pixels_to_rain_rate(pixels / 255.0, units.rain_rate_mapping())
    np.testing.assert_allclose(back[3:], rate[3:], rtol=0.016)  # half a 0.13 dB step
    assert back[1] == 0.0
    continuous = units.rain_rate_to_unit_pixels(rate[3:])
    np.testing.assert_allclose(units.pixels_to_rain_rate(continuous, units.rain_rate_mapping()),
                               rate[3:], rtol=1e-9)
    np.testing.assert_allclose(units.accumulation_to_rate(np.array([1.0]), 10.0), [6.0])
    np.testing.assert_allclose(units.rate_to_accumulation(np.array([6.0]), 5.0), [0.5])
    np.testing.assert_allclose(units.to_rain_rate(np.array([0.5]), {"unit": "mm",
                                                                    "accutime": 5.0}), [6.0])
    dbz = units.rain_rate_to_dbz(np.array([3.0]))
    np.testing.assert_allclose(units.to_rain_rate(dbz, {"unit": "dBZ"}), [3.0])
    with pytest.raises(DataError, match="cannot convert unit 'K' to mm/h"):
        units.to_rain_rate(np.array([1.0]), {"unit": "K"})
