"""The radar conversion as an Apache Beam pipeline (optional extra ``beam``).

Beam is the engine TensorFlow Datasets and TFX use for dataset generation: the DirectRunner
runs on one machine, and the same pipeline runs on Dataflow, Flink or Spark by pipeline
options (``--runner=FlinkRunner --flink_master=HOST:8081``, ``--runner=DataflowRunner
--project=... --region=... --temp_location=gs://...``, ``--runner=SparkRunner``).

The launcher plans the shards (:func:`radar_shards.prepare`), the pipeline writes each
unfinished shard on some worker (``Create -> Reshuffle -> Map(write_shard)``: the same
:class:`radar_shards.RadarShardWriter` as the process pool, so the records are byte for
byte those of the one-process converter), and the launcher publishes the dataset when the
pipeline is done (:func:`radar_shards.finish`). A shard is written to a temporary name and
renamed, so a retried bundle (Beam retries failed work) never leaves a torn shard; a failed
pipeline run again resumes from the finished shards like ``make_radar.py`` does.

The staging folder ``OUTPUT/.NAME.resumable`` must be on a file system every worker sees
(local for the DirectRunner; NFS or a bucket mounted with gcsfuse on a cluster), as must the
archive.
"""

from __future__ import annotations

import functools
import shlex
from typing import Any

from predrnn_tf.data import wetness
from predrnn_tf.data.converters import radar_conversion, radar_shards, resumable

EXTRA = "beam"


def import_beam() -> Any:
    """``apache_beam``, or ImportError naming the extra to install."""
    try:
        import apache_beam
    except ImportError as error:
        raise ImportError(f"the Beam pipeline needs apache-beam: pip install "
                          f"'predrnn_tf[{EXTRA}]' (or pip install apache-beam) ({error})") from None
    return apache_beam


def pipeline_options(text: str) -> list[str]:
    """``--beam_options`` (one string of Beam flags) -> the argument list Beam parses."""
    arguments = shlex.split(text or "")
    if not any(argument.startswith("--runner") for argument in arguments):
        arguments.insert(0, "--runner=DirectRunner")
    return arguments


def convert(options: radar_conversion.RadarOptions, beam_options: str = "",
            sampling: wetness.WetSampling | None = None) -> dict[str, Any]:
    """Converts a radar archive with a Beam pipeline; returns the metadata written.

    Args:
      options: the conversion's options (as ``make_radar.py``'s flags).
      beam_options: Beam pipeline options as one string (default: the DirectRunner).
      sampling: the wet-sampling rule recorded in the metadata.
    """
    beam = import_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    conversion = radar_shards.prepare(options)
    pending = conversion.pending()
    write = functools.partial(resumable.write_shard, conversion.writer, conversion.folder,
                              options.name)
    if pending:
        with beam.Pipeline(options=PipelineOptions(pipeline_options(beam_options))) as pipeline:
            _ = (pipeline
                 | "Shards" >> beam.Create(pending)
                 | "Spread" >> beam.Reshuffle()
                 | "Write" >> beam.Map(write))
    manifests = [resumable.finished_manifest(conversion.folder, options.name, task)
                 for task in conversion.tasks]
    missing = [task for task, manifest in zip(conversion.tasks, manifests, strict=True)
               if manifest is None]
    if missing:
        raise OSError(f"the Beam pipeline finished but {len(missing)} shard(s) are missing from "
                      f"{conversion.folder} (is it on a file system the workers share?)")
    return radar_shards.finish(conversion, manifests, sampling)
