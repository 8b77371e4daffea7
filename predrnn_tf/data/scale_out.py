"""The reader's options for large archives and many workers (:class:`ScaleOptions`).

- wet-sequence sampling: rejection sampling of serialized records by their stored
  ``wet_fraction`` (:mod:`predrnn_tf.data.wetness`), seeded;
- a validation split: the last train shards (in time order for radar archives) held out;
- tf.data service: the input pipeline runs on a dispatcher's workers;
- object storage: shards and metadata are read through ``tf.io.gfile`` when the folder is
  a URL (:func:`predrnn_tf.data.schema.is_url`).
"""

from __future__ import annotations

import dataclasses
import math
import re

import tensorflow as tf

from predrnn_tf.config import Config
from predrnn_tf.data import schema, wetness
from predrnn_tf.errors import ConfigError, DataError

# A tf.data service dispatcher's address: [grpc:// or grpc+loas://]HOST:PORT.
_SERVICE_ADDRESS = re.compile(r"(grpc(\+loas)?://)?[A-Za-z0-9._\-\[\]:]+:[0-9]{1,5}")
VALIDATION = "validation"  # train's last shards, held out (ScaleOptions.validation_fraction)


@dataclasses.dataclass(frozen=True)
class ScaleOptions:
    """The reader's options for large archives and many workers.

    Attributes:
      wet_sampling: keep each record with the probability :func:`wetness.weight_tf` gives
        its stored ``wet_fraction`` (rejection sampling, seeded; records without one are
        always kept). For training; None = every record alike.
      validation_fraction: the last ``ceil(fraction * shards)`` train shards (the latest
        in time for radar archives, whose shards are in time order) form the
        ``validation`` split and are left out of ``train``; 0 = no validation split.
      data_service: ``grpc://HOST:PORT`` of a tf.data service dispatcher: the pipeline
        (read, decode, augment, batch) runs on the service's workers, for input-bound
        runs; empty = in this process (:func:`use_data_service`).
      data_service_job: a job name shared by the trainers that split one stream.
    """

    wet_sampling: wetness.WetSampling | None = None
    validation_fraction: float = Config.validation_fraction
    data_service: str = Config.data_service
    data_service_job: str = ""


NO_SCALING = ScaleOptions()  # the reader's default: none of the options


def options_from_config(config: Config) -> ScaleOptions:
    """The training input's options from the run's Config; checks every field.

    The wet-sampling rule is checked even when ``wet_sampling`` is off, so a bad
    ``--wet_sampling_floor`` never waits for the day it is switched on.

    Raises:
      ConfigError: one line naming the flag, the value and the remedy.
    """
    rule = wetness.WetSampling(config.wet_sampling_floor, config.wet_sampling_scale)
    check_validation_fraction(config.validation_fraction)
    check_data_service(config.data_service)
    return ScaleOptions(wet_sampling=rule if config.wet_sampling else None,
                        validation_fraction=config.validation_fraction,
                        data_service=config.data_service)


def card_entry(scale: ScaleOptions, metadata: dict) -> dict | None:
    """The data card's ``wet_sampling``: the rule and what it keeps of the train records.

    ``train`` is the converter's wet-fraction histogram of the train split re-weighted by
    this rule (:func:`wetness.summary`), or None when the records store no wet fraction
    (then every record is kept). None when wet sampling is off.
    """
    if scale.wet_sampling is None:
        return None
    stored = (metadata.get("wet_sampling") or {}).get("train") or {}
    histogram = stored.get("histogram")
    return {**scale.wet_sampling.as_dict(), "feature": "wet_fraction",
            "train": wetness.summary(histogram, scale.wet_sampling) if histogram else None}


def check_validation_fraction(fraction: float) -> None:
    """ConfigError unless ``fraction`` is in [0, 1)."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"--validation_fraction must be in [0, 1) (the share of train "
                          f"shards held out; 0 = none), got {fraction}")


def check_data_service(service: str) -> None:
    """ConfigError unless ``service`` is empty or a ``[grpc://]HOST:PORT`` address."""
    if service and not _SERVICE_ADDRESS.fullmatch(service):
        raise ConfigError(f"--data_service must be grpc://HOST:PORT (a tf.data service "
                          f"dispatcher) or empty, got {service!r}")


def split_shards(data_dir: str, name: str, split: str, validation_fraction: float = 0.0
                 ) -> list[str]:
    """The shards of ``split``; with a validation fraction, train's last shards are validation.

    Raises:
      DataError: no shard, or a fraction that leaves train or validation without a shard.
    """
    source = "train" if split == VALIDATION else split
    paths = schema.shard_paths(data_dir, name, source)
    if not paths:
        raise DataError(f"no {source} shards {name}-{source}-*-of-*.tfrecord in {data_dir}")
    check_validation_fraction(validation_fraction)
    if split == "test" or (split == "train" and not validation_fraction):
        return paths
    held_out = math.ceil(validation_fraction * len(paths))
    if split == VALIDATION and not held_out:
        raise DataError("the validation split needs --validation_fraction > 0")
    if held_out >= len(paths):
        raise DataError(f"--validation_fraction={validation_fraction} of {len(paths)} train "
                        f"shard(s) of {name!r} leaves no train shard: convert with smaller "
                        f"--sequences_per_shard or lower the fraction")
    return paths[-held_out:] if split == VALIDATION else paths[:-held_out]


def sample_wet(records: tf.data.Dataset, rule: wetness.WetSampling, seed: int
               ) -> tf.data.Dataset:
    """Keeps each serialized record with probability ``weight(wet_fraction)`` (seeded)."""
    draws = tf.data.Dataset.random(seed=seed).map(
        lambda value: tf.cast(value % (1 << 24), tf.float32) / float(1 << 24))
    pairs = tf.data.Dataset.zip((records, draws))
    kept = pairs.filter(lambda record, draw: draw < wetness.weight_tf(
        schema.parse_wet_fraction(record), rule))
    return kept.map(lambda record, draw: record)


def check_split(split: str) -> None:
    """ValueError unless ``split`` is ``train``, ``test`` or ``validation``."""
    if split not in (*schema.SPLITS, VALIDATION):
        raise ValueError(f"split must be one of {(*schema.SPLITS, VALIDATION)}, received "
                         f"{split!r}")


def use_data_service(dataset: tf.data.Dataset, service: str, job_name: str = ""
                     ) -> tf.data.Dataset:
    """Runs ``dataset`` on the tf.data service at ``service`` (``grpc://HOST:PORT``).

    An empty ``service`` returns ``dataset`` unchanged.

    Start a dispatcher and workers on the input machines (``tf.data.experimental.service.
    DispatchServer`` / ``WorkerServer``); every trainer that passes the same ``job_name``
    shares one stream (each batch goes to one trainer), else each gets its own.
    """
    check_data_service(service)
    if not service:
        return dataset
    distributed = dataset.apply(tf.data.experimental.service.distribute(
        processing_mode=tf.data.experimental.service.ShardingPolicy.OFF, service=service,
        job_name=job_name or None))
    return distributed.prefetch(tf.data.AUTOTUNE)

