"""The TFRecord schema's writers: shards and metadata reach their final names through files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from predrnn_tf.data import schema


def sequences(count: int) -> list[np.ndarray]:
    return [np.full((2, 3, 4, 1), index, np.uint8) for index in range(count)]


def test_sharded_writer_publishes_final_shards_only(tmp_path):
    with schema.ShardedWriter(str(tmp_path), "demo", "train", sequences_per_shard=2) as writer:
        for index, frames in enumerate(sequences(5)):
            writer.write(frames, f"s{index}")
        assert schema.shard_paths(str(tmp_path), "demo", "train") == []
    names = sorted(os.listdir(tmp_path))
    assert names == [schema.shard_filename("demo", "train", index, 3) for index in range(3)]
    records = schema.read_split(str(tmp_path), "demo", "train")
    assert [sequence_id for _, sequence_id in records] == [f"s{index}" for index in range(5)]
    np.testing.assert_array_equal(records[4][0], sequences(5)[4])


def test_interrupted_writer_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), \
            schema.ShardedWriter(str(tmp_path), "demo", "test", sequences_per_shard=1) as writer:
        writer.write(sequences(1)[0])
        raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []


def test_publish_file_copies_without_hard_links(tmp_path, monkeypatch):
    staged, final = tmp_path / ".staged", tmp_path / "final.bin"
    staged.write_bytes(b"abc")
    final.write_bytes(b"old")

    def no_links(source, destination):
        raise OSError("file system without hard links")

    monkeypatch.setattr(os, "link", no_links)
    assert schema.publish_file(str(staged), str(final)) == str(final)
    assert final.read_bytes() == b"abc"
    assert os.listdir(tmp_path) == ["final.bin"]


def test_metadata_is_sorted_json_without_temporary(tmp_path):
    path = schema.write_metadata(str(tmp_path), "demo", {"num_train": 3, "channels": 1})
    text = open(path).read()
    assert text.endswith("\n") and list(json.loads(text)) == sorted(json.loads(text))
    assert schema.read_metadata(str(tmp_path), "demo")["name"] == "demo"
    assert os.listdir(tmp_path) == ["demo-metadata.json"]
