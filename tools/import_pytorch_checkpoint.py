"""Imports a checkpoint of the official PyTorch PredRNN (thuml/predrnn-pytorch) into a workdir.

  python tools/import_pytorch_checkpoint.py --checkpoint=model.ckpt-80000 \
      --flagfile=configs/mnist.flags --workdir=runs/mnist_official [--model_name=predrnn]

With ``--checkpoint_format=openstl`` (and ``--model_name=mim``) the file is an OpenSTL
``MIM_Model`` state dict (see predrnn_tf/interop/mim_pytorch.py for the layout).

The official file is what ``model_factory.save`` writes (``{'net_param': state_dict}``)
for ``--model_name=predrnn_v2`` or ``predrnn``, with or without ``--layer_norm``. Every key and
shape is checked against the flags first; the first mismatch (missing key, unexpected key,
wrong shape) is reported in one line and nothing is written. On success the new work
directory holds a training checkpoint (the weights, a fresh Adam, step = the ``-N`` suffix of
the file name or 0, a seeded mask generator) and ``config.json``, so ``evaluate``, ``export``
and ``train --workdir=...`` (continued training) work on it. The directory is assembled under
a temporary name and renamed into place. Needs torch (CPU is enough).
"""

from __future__ import annotations

import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import flags

from predrnn_tf.cli import flag_parsing

flag_parsing.import_tensorflow_quietly()

from predrnn_tf import files
from predrnn_tf.config import ConfigError

flag_parsing.define_config_flags()
_CHECKPOINT = flags.DEFINE_string("checkpoint", None,
                                  "The official PyTorch checkpoint file (model.ckpt-N).")
_WORKDIR = flags.DEFINE_string("workdir", None, "New work directory to create (must not hold "
                                                "anything yet).")
_FORMAT = flags.DEFINE_enum(
    "checkpoint_format", "official", ["official", "openstl"],
    "official: thuml/predrnn-pytorch {'net_param': ...} (predrnn_v2, predrnn); openstl: "
    "OpenSTL's MIM_Model state dict, bare or Lightning {'state_dict': {'model.' + key}} "
    "(needs --model_name=mim; --decouple_beta=0 gives OpenSTL's exact model).")


def step_from_filename(path: str) -> int:
    """The iteration in an official file name ``model.ckpt-80000``; 0 without a suffix."""
    match = re.search(r"-(\d+)$", os.path.basename(path))
    return int(match.group(1)) if match else 0


def check_workdir_is_free(workdir: str) -> None:
    """Refuses a work directory that already holds files (nothing is overwritten)."""
    if os.path.isfile(workdir):
        raise ConfigError(f"--workdir={workdir} is a file")
    if os.path.isdir(workdir) and os.listdir(workdir):
        raise ConfigError(f"--workdir={workdir} already exists and is not empty: "
                          f"choose a new directory")


def write_workdir(model, config, step: int, workdir: str) -> str:
    """Writes checkpoint + config.json into a staging folder renamed to ``workdir`` when done."""
    import tensorflow as tf

    from predrnn_tf import checkpoints
    from predrnn_tf.config import save_config
    from predrnn_tf.training.loop import make_optimizer

    # The work directory is empty or absent (checked before): it is replaced as a whole.
    with files.atomic_directory(workdir, replace=os.path.isdir(workdir)) as staging:
        optimizer = make_optimizer(config)
        optimizer.build(model.trainable_variables)
        checkpoint = checkpoints.make_training_checkpoint(
            model, optimizer, tf.Variable(step, dtype=tf.int64, trainable=False, name="step"),
            tf.random.Generator.from_seed(config.seed))
        path = checkpoints.make_manager(checkpoint, staging).save(checkpoint_number=step)
        save_config(config, staging)
    return os.path.join(workdir, os.path.relpath(path, staging))


def run() -> None:
    from predrnn_tf.interop import mim_pytorch, pytorch
    from predrnn_tf.models.builder import build_model

    if not _CHECKPOINT.value:
        raise ConfigError("--checkpoint is required (the official model.ckpt-N file)")
    if not _WORKDIR.value:
        raise ConfigError("--workdir is required")
    config = flag_parsing.config_from_flags()
    if _FORMAT.value == "openstl":
        layout = mim_pytorch  # the OpenSTL MIM checkpoint layout
        layout.check_mim_config(config)
        check_workdir_is_free(_WORKDIR.value)
        state_dict = layout.read_openstl_checkpoint(_CHECKPOINT.value)
    else:
        layout = pytorch  # the official PredRNN checkpoint layout
        layout.check_official_config(config)
        check_workdir_is_free(_WORKDIR.value)
        state_dict = layout.read_torch_checkpoint(_CHECKPOINT.value)
    layout.check_shapes({key: value.shape for key, value in state_dict.items()}, config,
                        source=_CHECKPOINT.value)
    model = build_model(config)
    layout.load_state_dict(model, state_dict, config, source=_CHECKPOINT.value)
    step = step_from_filename(_CHECKPOINT.value)
    path = write_workdir(model, config, step, _WORKDIR.value)
    print(f"imported {len(state_dict)} tensors from {_CHECKPOINT.value} into {path} "
          f"(step {step}, {config.model_name}, layer_norm={config.layer_norm})")


if __name__ == "__main__":
    flag_parsing.run_tool(run, errors=(ImportError,))  # CheckpointFormatError is a PredRNNError
