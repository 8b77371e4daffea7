"""converters/beam_pipeline.py: the radar conversion on Beam's DirectRunner, byte-identical."""

from __future__ import annotations

import pytest

from predrnn_tf.data.converters import beam_pipeline, radar_shards
from tests.test_radar_shards import checksums, options, write_archive


def test_pipeline_options_default_to_the_direct_runner():
    assert beam_pipeline.pipeline_options("") == ["--runner=DirectRunner"]
    assert beam_pipeline.pipeline_options("--runner=FlinkRunner --flink_master=h:8081") == [
        "--runner=FlinkRunner", "--flink_master=h:8081"]


def test_direct_runner_writes_the_same_bytes_as_one_process(tmp_path):
    pytest.importorskip("apache_beam", reason="needs the beam extra (apache-beam)")
    pattern = write_archive(str(tmp_path / "archive"), 24)
    radar_shards.convert(options(pattern, str(tmp_path / "local")), num_workers=1)
    metadata = beam_pipeline.convert(options(pattern, str(tmp_path / "beam")))
    assert metadata["num_train"] > 0 and metadata["num_test"] > 0
    local, beam = checksums(str(tmp_path / "local")), checksums(str(tmp_path / "beam"))
    assert len(local) == 1 + metadata["train_shards"] + metadata["test_shards"]
    assert beam == local


def test_without_beam_the_error_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name.startswith("apache_beam"):
            raise ImportError("No module named 'apache_beam'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    with pytest.raises(ImportError, match=r"predrnn_tf\[beam\]"):
        beam_pipeline.import_beam()
