"""The metadata of a sharded radar conversion, from its shards' manifests.

The same fields as the one-process converter (:func:`radar_conversion.convert_radar`), with
per-file statistics summed over the shards that own the files, a check that every shard
saw the same units and grid spacing, and the wet-sampling summary
(:mod:`predrnn_tf.data.wetness`).
"""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np

from predrnn_tf import units
from predrnn_tf.data import wetness
from predrnn_tf.data.converters import publishing, radar_conversion, resumable
from predrnn_tf.errors import DataError


def radar_metadata(options: radar_conversion.RadarOptions, paths: list[str],
                   times: list[datetime.datetime], facts: dict[str, Any],
                   manifests: list[dict[str, Any]],
                   sampling: wetness.WetSampling | None = None) -> dict[str, Any]:
    """The dataset metadata from the shards' manifests (same fields as the one-process run)."""
    stats = [manifest["stats"] for manifest in manifests]
    metadata = publishing.common_metadata(options.image_size, options.image_size, 1,
                                          f"{options.importer} files {options.input_glob}",
                                          False, "make_radar")
    metadata["no_data_pixels"] = int(resumable.summed_stats(manifests, "no_data_pixels"))
    metadata["details"] = radar_conversion.radar_details(
        options, paths, times, facts["test_after"], facts["segments"])
    metadata["wet_sampling"] = _wet_metadata(manifests, sampling or wetness.WetSampling())
    if options.storage != "rain_rate":
        metadata["value_mapping"] = units.hko7_mapping()
        return metadata
    _check_same_source(stats)
    if not resumable.summed_stats(manifests, "valid_seen"):
        raise DataError(f"--input_glob={options.input_glob!r}: no valid pixel in any frame "
                        f"(every value is no data)")
    kept = {split: sum(m["stats"]["tiles_kept"] for m in manifests if m["split"] == split)
            for split in ("train", "test")}
    if not sum(kept.values()):
        raise DataError(f"no tile of --image_size={options.image_size} kept: fields are "
                        f"{stats[0]['field_shape']} pixels at --pixel_km={options.pixel_km:g}, "
                        f"--min_valid_fraction={options.min_valid_fraction:g}, "
                        f"--min_wet_fraction={options.min_wet_fraction:g}")
    step = radar_conversion.time_factor(options)
    metadata["value_mapping"] = units.rain_rate_mapping()
    metadata["schema_version"] = radar_conversion.SCHEMA_VERSION_NO_DATA
    metadata["grid"] = {"pixel_km": options.pixel_km,
                        "interval_minutes": options.timestep_minutes * step,
                        "source_timestep_minutes": options.timestep_minutes,
                        "frames_skipped_between": step - 1}
    metadata["details"].update({
        "tiles_kept": kept,
        "tiles_dropped": int(resumable.summed_stats(manifests, "tiles_dropped")),
        "source_pixel_km": stats[0]["source_pixel_km"]})
    return metadata


def _check_same_source(stats: list[dict[str, Any]]) -> None:
    """DataError if two shards saw different units or grid spacings."""
    first = stats[0]
    for other in stats[1:]:
        for key in ("unit", "source_pixel_km"):
            if other[key] != first[key]:
                raise DataError(f"mixed units in one dataset: {other['first_path']} holds "
                                f"{key}={other[key]} but {first['first_path']} holds "
                                f"{first[key]}")


def _wet_metadata(manifests: list[dict[str, Any]], sampling: wetness.WetSampling
                  ) -> dict[str, Any]:
    """The wet-sampling rule and each split's wet-fraction summary."""
    summary: dict[str, Any] = sampling.as_dict()
    summary["feature"] = "wet_fraction"
    for split in ("train", "test"):
        counts = np.zeros(len(wetness.HISTOGRAM_EDGES) - 1, np.int64)
        for manifest in manifests:
            if manifest["split"] == split:
                counts += np.asarray(manifest["stats"]["wet_histogram"], np.int64)
        summary[split] = wetness.summary(counts.tolist(), sampling)
    return summary

