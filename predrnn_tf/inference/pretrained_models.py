"""Pretrained models shipped inside the package, each a read-only work directory.

``radar_real``: the real-radar recipe (``configs/radar_real.flags``) trained on three
archives of the pysteps example data (FMI, KNMI, BoM); its card is
``pretrained/radar_real/MODEL_CARD.md`` (data, recipe, scores beside the baselines). Every
command that takes ``--workdir`` takes the folder that :func:`pretrained_workdir` returns::

  predrnn-predict --workdir="$(python -m predrnn_tf.inference.pretrained_models radar_real)" ...
"""

from __future__ import annotations

import os
import sys

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")
PRETRAINED_MODELS = ("radar_real",)


def pretrained_workdir(name: str) -> str:
    """The work directory (``config.json``, ``data_card.json``, ``checkpoints/``) of ``name``.

    Raises:
      ValueError: ``name`` is not one of :data:`PRETRAINED_MODELS`, or its files are missing.
    """
    if name not in PRETRAINED_MODELS:
        raise ValueError(f"no pretrained model {name!r}; there are: "
                         f"{', '.join(PRETRAINED_MODELS)}")
    workdir = os.path.join(PRETRAINED_DIR, name)
    if not os.path.exists(os.path.join(workdir, "config.json")):
        raise ValueError(f"pretrained model {name!r} is not installed: {workdir} has no "
                         f"config.json (reinstall the package)")
    return workdir


def main(argv: list[str]) -> int:
    """Prints the work directory of the pretrained model named in ``argv[1]``."""
    if len(argv) != 2:
        print(f"usage: python -m predrnn_tf.inference.pretrained_models "
              f"{{{','.join(PRETRAINED_MODELS)}}}", file=sys.stderr)
        return 2
    try:
        print(pretrained_workdir(argv[1]))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
