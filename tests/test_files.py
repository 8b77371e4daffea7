"""Shared file helpers."""

import os

from predrnn_tf import files


def test_saved_model_versions_lists_numeric_folders_with_a_saved_model(tmp_path):
    for name, has_model in (("2", True), ("10", True), ("3", False), ("tmp", True)):
        os.makedirs(tmp_path / name)
        if has_model:
            (tmp_path / name / "saved_model.pb").write_bytes(b"")
    assert files.saved_model_versions(str(tmp_path)) == [2, 10]  # numeric order, not text
    assert files.saved_model_versions(str(tmp_path / "missing")) == []


def test_saved_model_versions_take_ascii_digits_only(tmp_path):
    """'١٢' (Arabic-Indic digits) is not version 12: TF Serving reads ASCII version folders."""
    for name in ("\u0661\u0662", "3"):
        os.makedirs(tmp_path / name)
        (tmp_path / name / "saved_model.pb").write_bytes(b"")
    assert files.saved_model_versions(str(tmp_path)) == [3]
