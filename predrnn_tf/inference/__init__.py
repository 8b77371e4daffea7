"""Inference on a user's own files: load frames, forecast, write the forecast and pictures.

``frames`` (``load_frames``: a .npy, a folder of PNG frames or a radar archive read through
the converters' importers), ``forecaster`` (a work directory's checkpoint or an exported
SavedModel behind one ``forecast`` call), ``outputs`` (.npy in physical units, official-style
gt/pd PNG folders, GIF, a strip with a labelled colour bar) and ``predict`` (the library
function behind ``predrnn-predict``).

May import config, errors, files, units, checkpoints, models, layers, data (metadata and the
radar importers), evaluation (pictures) and serving (signature names); never training,
cli/ or absl flags.
"""

from predrnn_tf.inference.frames import load_frames

# load_frames, and the public modules tools may import (listed, not imported here).
__all__ = ["load_frames", "forecaster", "frames", "outputs", "predict", "pretrained_models",
           "radar_input"]
