"""pysteps' settings shared by the pysteps baselines, and its quiet, optional import.

The settings of pysteps' own examples (``plot_extrapolation_nowcast.py``,
``plot_steps_nowcast.py``): motion on the last 3 frames in dBR (threshold 0.1 mm/h, no rain
and no data -> -15 dBR), semi-Lagrangian advection of the last rain-rate field; S-PROG and
STEPS on dBR with 6 cascade levels and a -10 dBR precipitation threshold.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

MOTION_FRAMES = 3
DBR_THRESHOLD_MMH = 0.1
DBR_ZEROVALUE = -15.0
SPROG_CASCADE_LEVELS = 6
SPROG_PRECIP_THRESHOLD_DBR = -10.0
STEPS_DEFAULT_MEMBERS = 20  # pysteps' STEPS example runs 20 members (its default is 24)
STEPS_DEFAULT_SEED = 24  # the first sequence's STEPS seed (sequence k: + k); --ensemble_seed adds
PYSTEPS_MISSING = ("the extrapolation baseline needs pysteps, which is not installed: "
                   "pip install pysteps")


def import_pysteps() -> Any:
    """Imports pysteps quietly; ImportError with the install command if missing."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import pysteps
            import pysteps.extrapolation
            import pysteps.motion
            import pysteps.nowcasts
            import pysteps.utils
    except ImportError as error:
        raise ImportError(PYSTEPS_MISSING) from error
    return pysteps
