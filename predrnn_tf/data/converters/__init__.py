"""Converters from raw public formats (Moving MNIST, KTH, radar archives) to the TFRecord schema.

Per-dataset modules (``moving_mnist``, ``kth``, ``radar``) only decode bytes; ``windows``,
``imaging`` and ``publishing`` are shared. May import config, errors, files, units and
``data.schema``; never models, training, evaluation, serving or cli/.
"""

# The public modules, which tools may import; listed, not imported here (no import circle).
__all__ = ["beam_pipeline", "convert", "imaging", "kth", "moving_mnist", "parallel", "publishing",
           "radar", "radar_conversion", "radar_shards", "resumable", "shard_metadata",
           "whole_frames", "windows"]
