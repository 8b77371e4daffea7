r"""Makes a radar-echo TFRecord dataset from a time-ordered archive of radar frames.

  python tools/make_radar.py --input_glob='/path/to/fmi_pgm/*/*.pgm.gz' \
      --importer=fmi_pgm --importer_kwargs='{"gzipped": true}' \
      --filename_pattern='%Y%m%d%H%M_fmi.radar.composite.lowest_FIN_SUOMI1' \
      --timestep_minutes=5 --image_size=128 --total_length=20 --stride=1 \
      --test_after=201705090000 --output_dir=data/radar --name=fmi

Conventions follow pysteps' data sources: --importer is a built-in (fmi_pgm, knmi_hdf5, pgm,
png, npy) or any pysteps.io importer by name (mch_gif, odim_hdf5, bom_rf3, ...; pysteps is
then needed), --importer_kwargs its JSON keyword arguments, --filename_pattern the time
stamp in the file name (strftime codes, '?' = any one character). Whatever the importer
returns (dBZ, rain rate mm/h, or mm accumulated over 'accutime' minutes) is converted to dBZ
(Z = zr_a * R ** zr_b); no-data pixels become no echo and are counted; frames are cropped
(--crop, default the largest centred square), area-averaged to --image_size and stored as
uint8 with dBZ = 70 * pixel / 255 - 10 (kept in the metadata as value_mapping). Windows of
--total_length frames every --stride frames never cross a gap in the time stamps; windows
starting at or after --test_after are test (default: the last 20% of the timeline) and no
window straddles the split.

--engine=beam runs the same conversion as an Apache Beam pipeline (--beam_options picks the
runner: DirectRunner by default, or Dataflow, Flink, Spark); its output is byte-identical.
--num_workers=N converts N shards at a time in N processes (0 = one per core); the output is
the same for any N. The conversion is resumable: shards are staged in OUTPUT/.NAME.resumable
and a killed run (even kill -9), started again with the same flags, keeps every finished
shard. Each record stores its wet fraction (share of pixels >= 0.1 mm/h) for wet-sequence
sampling in training (--wet_sampling); the metadata's wet_sampling summarises it.

The real-radar recipe (--storage=rain_rate; its settings in configs/radar_real_data.flags)
stores rain rate instead: any source's unit -> mm/h, area-averaged to --pixel_km, sampled
every --interval_minutes, tiled into --image_size squares, dBR with pixel 0 = no data:

  python tools/make_radar.py --flagfile=configs/radar_real_data.flags \
      --input_glob='ARCHIVE/*.h5' --importer=knmi_hdf5 --importer_kwargs='{}' \
      --filename_pattern='RAD_NL25_RAP_5min_%Y%m%d%H%M' --timestep_minutes=5 \
      --test_after=201008260520 --output_dir=/tmp/radar --name=knmi
"""

from __future__ import annotations

import time

from absl import flags

from predrnn_tf.cli import flag_parsing

flag_parsing.import_tensorflow_quietly()

from predrnn_tf.config import Config
from predrnn_tf.data import wetness
from predrnn_tf.data.converters import (
    beam_pipeline,
    imaging,
    publishing,
    radar,
    radar_conversion,
    radar_shards,
)
from predrnn_tf.errors import ConfigError, DataError

_INPUT_GLOB = flags.DEFINE_string("input_glob", None, "Glob of the radar files ('**' ok).",
                                  required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Folder for the shards and metadata.",
                                  required=True)
_NAME = flags.DEFINE_string("name", "radar", "Dataset name (file prefix).")
_IMPORTER = flags.DEFINE_string(
    "importer", "fmi_pgm",
    "fmi_pgm | knmi_hdf5 | pgm | png | npy (built in) or any pysteps.io importer name.")
_IMPORTER_KWARGS = flags.DEFINE_string(
    "importer_kwargs", "{}", "JSON keyword arguments of the importer, as in pysteps' "
    "data-source settings, e.g. '{\"gzipped\": true}'; for npy: unit, accutime.")
_USE_PYSTEPS = flags.DEFINE_bool(
    "use_pysteps", False, "Read fmi_pgm / knmi_hdf5 with pysteps instead of the built-ins.")
_FILENAME_PATTERN = flags.DEFINE_string(
    "filename_pattern", None,
    "Time stamp in the file name, pysteps fn_pattern syntax (strftime codes, '?' = any one "
    "character), matched at the start of the file name.", required=True)
_TIMESTEP_MINUTES = flags.DEFINE_float("timestep_minutes", 5.0, "Nominal interval of frames.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 128, "Output frame side in pixels.")
_CROP = flags.DEFINE_string(
    "crop", "", "top,left,height,width in source pixels; empty = largest centred square.")
_TOTAL_LENGTH = flags.DEFINE_integer("total_length", 20, "Frames per sequence.")
_STRIDE = flags.DEFINE_integer("stride", 1, "Frames between the starts of two windows.")
_TEST_AFTER = flags.DEFINE_string(
    "test_after", "", "YYYYmmddHHMM: windows starting at or after it are test; empty = the "
    "last --test_fraction of the timeline.")
_TEST_FRACTION = flags.DEFINE_float("test_fraction", 0.2, "Test share without --test_after.")
_PIXEL_SCALE = flags.DEFINE_float(
    "pixel_scale", 1.0, "pgm/png importers: units = pixel_scale * pixel + pixel_offset "
    "(FMI: 0.5, -32; HKO-7: 70/255=0.2745098, -10).")
_PIXEL_OFFSET = flags.DEFINE_float("pixel_offset", 0.0, "pgm/png importers: see pixel_scale.")
_NO_DATA_PIXEL = flags.DEFINE_integer(
    "no_data_pixel", -1, "pgm/png importers: pixel value meaning no data (-1 = none).")
_PIXEL_UNIT = flags.DEFINE_enum("pixel_unit", "dBZ", ["dBZ", "mm/h", "mm"],
                                "pgm/png importers: unit of the mapped pixel values.")
_ZR_A = flags.DEFINE_float("zr_a", 200.0, "Z-R relation Z = zr_a * R ** zr_b: a.")
_ZR_B = flags.DEFINE_float("zr_b", 1.6, "Z-R relation Z = zr_a * R ** zr_b: b.")
_SEQUENCES_PER_SHARD = flags.DEFINE_integer("sequences_per_shard", 500, "Records per shard.")
_STORAGE = flags.DEFINE_enum(
    "storage", "hko7_dbz", ["hko7_dbz", "rain_rate"],
    "rain_rate: the real-radar recipe (mm/h in dBR, pixel 0 = no data, fixed --pixel_km "
    "grid and --interval_minutes, --image_size tiles); hko7_dbz: dBZ, centred square.")
_PIXEL_KM = flags.DEFINE_float("pixel_km", 2.0, "rain_rate: the recipe's grid spacing (km).")
_SOURCE_PIXEL_KM = flags.DEFINE_float(
    "source_pixel_km", 0.0, "rain_rate: the source's grid spacing in km (0 = from the "
    "importer's metadata; needed for pgm/png/npy).")
_INTERVAL_MINUTES = flags.DEFINE_float(
    "interval_minutes", 0.0, "rain_rate: the recipe's interval; a whole multiple of "
    "--timestep_minutes (frames in between are skipped), else a one-line error. 0 = the "
    "source's.")
_TILE_STRIDE = flags.DEFINE_integer("tile_stride", 0, "rain_rate: pixels between tiles "
                                    "(0 = --image_size, non-overlapping).")
_MIN_VALID_FRACTION = flags.DEFINE_float(
    "min_valid_fraction", 0.5, "rain_rate: tiles with less valid (inside coverage) area "
    "are dropped.")
_MIN_WET_FRACTION = flags.DEFINE_float(
    "min_wet_fraction", 0.0, "rain_rate: tiles whose valid pixels over the window have "
    "less than this share >= 0.1 mm/h are dropped (both splits alike).")

_WHOLE_TEST_FRAMES = flags.DEFINE_bool(
    "whole_test_frames", False, "rain_rate: the test split holds whole composites (the valid "
    "extent, grown to a multiple of --whole_frame_multiple) instead of tiles.")
_WHOLE_FRAME_MULTIPLE = flags.DEFINE_integer(
    "whole_frame_multiple", 16, "rain_rate: whole test frames' sides are multiples of it.")
_NUM_WORKERS = flags.DEFINE_integer(
    "num_workers", 1, "Processes converting shards in parallel (0 = one per CPU core); the "
    "output does not depend on it.")
_ENGINE = flags.DEFINE_enum(
    "engine", "processes", ["processes", "beam"],
    "processes: --num_workers processes on this machine; beam: an Apache Beam pipeline "
    "(pip install apache-beam) run by --beam_options (default the DirectRunner).")
_BEAM_OPTIONS = flags.DEFINE_string(
    "beam_options", "", "--engine=beam: Beam pipeline options as one string, e.g. "
    "'--runner=FlinkRunner --flink_master=host:8081' or '--runner=DataflowRunner "
    "--project=P --region=R --temp_location=gs://B/tmp'.")
_WET_SAMPLING_FLOOR = flags.DEFINE_float(
    "wet_sampling_floor", Config.wet_sampling_floor, "The wet-sampling rule recorded in "
    "the metadata: acceptance of a dry sequence (training's --wet_sampling_floor may "
    "override it).")
_WET_SAMPLING_SCALE = flags.DEFINE_float(
    "wet_sampling_scale", Config.wet_sampling_scale, "The wet-sampling rule: weight = "
    "max(floor, 1 - exp(-wet fraction / scale)).")


def check_engine_flags(options: radar_conversion.RadarOptions) -> None:
    """Every flag checked before a file is listed (one line naming the first bad one)."""
    radar_conversion.check_radar_options(options)
    radar.check_importer_name(options.importer, options.use_pysteps)
    radar.parse_importer_kwargs(options.importer_kwargs)
    if _BEAM_OPTIONS.value and _ENGINE.value != "beam":
        raise ConfigError(f"--beam_options={_BEAM_OPTIONS.value!r} given without "
                          f"--engine=beam: Beam options apply to the Beam engine only")


def run_conversion() -> None:
    """Runs the conversion and prints the summary line."""
    start = time.monotonic()
    if _NO_DATA_PIXEL.value < -1:
        raise ConfigError(f"--no_data_pixel={_NO_DATA_PIXEL.value} must be -1 (none) or a "
                          f"pixel value in [0, 65535]")
    try:
        crop = imaging.parse_crop(_CROP.value)
    except ValueError as error:
        raise ValueError(f"--crop: {error}") from error
    try:
        test_after = radar.parse_timestamp(_TEST_AFTER.value) if _TEST_AFTER.value else None
    except ValueError as error:
        raise ValueError(f"--test_after: {error}") from error
    options = radar_conversion.RadarOptions(
        input_glob=_INPUT_GLOB.value, output_dir=_OUTPUT_DIR.value, name=_NAME.value,
        filename_pattern=_FILENAME_PATTERN.value, importer=_IMPORTER.value,
        importer_kwargs=_IMPORTER_KWARGS.value, use_pysteps=_USE_PYSTEPS.value,
        timestep_minutes=_TIMESTEP_MINUTES.value, image_size=_IMAGE_SIZE.value, crop=crop,
        total_length=_TOTAL_LENGTH.value, stride=_STRIDE.value, test_after=test_after,
        test_fraction=_TEST_FRACTION.value, pixel_scale=_PIXEL_SCALE.value,
        pixel_offset=_PIXEL_OFFSET.value,
        no_data_pixel=None if _NO_DATA_PIXEL.value < 0 else _NO_DATA_PIXEL.value,
        pixel_unit=_PIXEL_UNIT.value, zr_a=_ZR_A.value, zr_b=_ZR_B.value,
        sequences_per_shard=_SEQUENCES_PER_SHARD.value, storage=_STORAGE.value,
        pixel_km=_PIXEL_KM.value, source_pixel_km=_SOURCE_PIXEL_KM.value,
        interval_minutes=_INTERVAL_MINUTES.value, tile_stride=_TILE_STRIDE.value,
        min_valid_fraction=_MIN_VALID_FRACTION.value, min_wet_fraction=_MIN_WET_FRACTION.value,
        whole_test_frames=_WHOLE_TEST_FRAMES.value,
        whole_frame_multiple=_WHOLE_FRAME_MULTIPLE.value)
    check_engine_flags(options)
    sampling = wetness.WetSampling(_WET_SAMPLING_FLOOR.value, _WET_SAMPLING_SCALE.value)
    if _ENGINE.value == "beam":
        metadata = beam_pipeline.convert(options, _BEAM_OPTIONS.value, sampling)
    else:
        metadata = radar_shards.convert(options, _NUM_WORKERS.value, sampling)
    print(publishing.format_summary(metadata, _OUTPUT_DIR.value, time.monotonic() - start))


if __name__ == "__main__":
    flag_parsing.run_tool(run_conversion, errors=(ValueError, OSError, ImportError, DataError))
