"""Exports a trained workdir as an official PyTorch PredRNN checkpoint (thuml/predrnn-pytorch).

  python tools/export_pytorch_checkpoint.py --workdir=runs/mnist --output=model.ckpt-80000

Writes ``torch.save({'net_param': state_dict}, output)`` with the official key layout of
``predrnn_v2`` or ``predrnn`` (see ``predrnn_tf/pytorch.py``), so the official code
loads it with ``--pretrained_model=model.ckpt-80000`` and the same model flags, which are
printed. The file is written under a temporary name and renamed. Importing the result with
``tools/import_pytorch_checkpoint.py`` gives back bit-identical weights. Needs torch.
A ``--model_name=mim`` workdir is written as a bare OpenSTL ``MIM_Model`` state dict instead
(import it back with ``--checkpoint_format=openstl``).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import flags

from predrnn_tf.cli import flag_parsing

flag_parsing.import_tensorflow_quietly()

from predrnn_tf.config import ConfigError
from predrnn_tf.workdir import WorkDir

_WORKDIR = flags.DEFINE_string("workdir", None, "Training work directory to export.")
_OUTPUT = flags.DEFINE_string("output", None, "Output file, e.g. model.ckpt-80000.")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None,
                                  "Checkpoint prefix inside the workdir (default: the newest).")


def official_flags(config) -> str:
    """The official run.py model flags that rebuild the exported network."""
    return (f"--model_name={config.model_name} "
            f"--num_hidden={','.join(str(size) for size in config.num_hidden)} "
            f"--filter_size={config.filter_size} --stride=1 "  # the official models' stride
            f"--patch_size={config.patch_size} --img_width={config.img_width} "
            f"--img_channel={config.img_channel} --layer_norm={int(config.layer_norm)}")


def export_mim() -> None:
    """A MIM workdir: a bare OpenSTL ``MIM_Model`` state dict (``torch.save(state_dict)``).

    The decoupling adapter is not an OpenSTL weight and is left out, so OpenSTL's strict
    ``load_state_dict`` accepts the file.
    """
    import io

    from predrnn_tf import files
    from predrnn_tf.interop import mim_pytorch, pytorch

    torch = pytorch.import_torch()
    model, config = WorkDir(_WORKDIR.value).restore_model(_CHECKPOINT.value, precision="float32")
    state_dict = mim_pytorch.model_state_dict(model, config)
    buffer = io.BytesIO()
    torch.save({key: torch.from_numpy(value) for key, value in state_dict.items()}, buffer)
    files.write_bytes(_OUTPUT.value, buffer.getvalue())
    print(f"wrote {len(state_dict)} tensors to {_OUTPUT.value} (OpenSTL MIM_Model state dict; "
          f"num_hidden={','.join(map(str, config.num_hidden))}, filter_size="
          f"{config.filter_size}, patch_size={config.patch_size}, layer_norm="
          f"{int(config.layer_norm)})")


def run() -> None:
    from predrnn_tf.interop import pytorch

    if not _WORKDIR.value:
        raise ConfigError("--workdir is required")
    if not _OUTPUT.value:
        raise ConfigError("--output is required (e.g. model.ckpt-80000)")
    if os.path.isdir(_OUTPUT.value):
        raise ConfigError(f"--output={_OUTPUT.value} is a directory; give a file name")
    work = WorkDir(_WORKDIR.value)
    saved = work.config
    if saved.model_name == "mim":
        export_mim()
        return
    pytorch.check_official_config(saved)
    pytorch.import_torch()  # fail before the (slower) restore if torch is missing
    model, config = work.restore_model(_CHECKPOINT.value, precision="float32")
    state_dict = pytorch.model_state_dict(model, config)
    pytorch.write_torch_checkpoint(state_dict, _OUTPUT.value)
    print(f"wrote {len(state_dict)} tensors to {_OUTPUT.value}; official flags: "
          f"{official_flags(config)}")


if __name__ == "__main__":
    flag_parsing.run_tool(run, errors=(ImportError,))  # CheckpointFormatError is a PredRNNError
