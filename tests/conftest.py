"""Test set-up: quiet TensorFlow logs and deterministic seeds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# Tests run TensorFlow on the path the commands take on this CPU kind (oneDNN on AVX2-only
# CPUs too: predrnn_tf.training.cpu_features), set before any test imports TensorFlow.
from predrnn_tf.training import cpu_features  # noqa: E402

cpu_features.apply_tensorflow_environment()
