"""The radar importers of the converters (predrnn_tf/data/converters/radar.py)."""

import cv2
import numpy as np
import pytest

from predrnn_tf.data.converters import radar
from predrnn_tf.errors import DataError


def test_npy_importer_reads_a_field(tmp_path):
    np.save(tmp_path / "field.npy", np.ones((4, 5), np.float32))
    values, info = radar.import_npy(str(tmp_path / "field.npy"), unit="mm/h")
    assert values.shape == (4, 5) and info["unit"] == "mm/h"


def test_npy_importer_names_a_file_of_another_format(tmp_path):
    """A PNG given to --importer=npy: one line saying so, not numpy's pickle message."""
    cv2.imwrite(str(tmp_path / "frame.png"), np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="is not a .npy array") as caught:
        radar.import_npy(str(tmp_path / "frame.png"))
    assert "pickle" not in str(caught.value)
