"""predrnn-predict --saved_model on damaged exports: the newest intact version, one line."""

import logging
import shutil

import pytest

from predrnn_tf.config import Config
from predrnn_tf.errors import ExportError
from predrnn_tf.inference import forecaster
from predrnn_tf.models.builder import build_model
from predrnn_tf.serving import exporter

TINY = Config(num_hidden=(4, 4), filter_size=3, patch_size=4, img_width=16, input_length=3,
              total_length=6)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("exports")
    exporter.export_model(build_model(TINY), TINY, str(path), "tiny", 2, warmup=False)
    return path / "tiny"


def test_a_damaged_newer_version_is_passed_over_with_a_warning(model_dir, tmp_path, caplog):
    copy = tmp_path / "tiny"
    shutil.copytree(model_dir / "2", copy / "2")
    shutil.copytree(model_dir / "2", copy / "5")
    data = next((copy / "5" / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[:16])
    with caplog.at_level(logging.WARNING):
        forecast = forecaster.from_saved_model(str(copy))
    assert forecast.source.endswith(str(copy / "2"))
    assert f"{copy / '5'} is damaged (variables/" in caplog.text
    with pytest.raises(ExportError) as raised:
        forecaster.from_saved_model(str(copy / "5"))
    assert f"--saved_model={copy / '5'} is damaged: variables/" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_corrupt_saved_model_pb_is_one_line(model_dir, tmp_path):
    shutil.copytree(model_dir / "2", tmp_path / "3")
    (tmp_path / "3" / "saved_model.pb").write_bytes(b"\x08\x01garbage")
    with pytest.raises(ExportError) as raised:
        forecaster.from_saved_model(str(tmp_path / "3"))
    assert "is damaged: saved_model.pb" in str(raised.value)
    assert "\n" not in str(raised.value)
