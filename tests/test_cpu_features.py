"""training/cpu_features.py: CPU kinds, the oneDNN environment and the bfloat16 warning."""

import pytest

from predrnn_tf.training import cpu_features

ZEN3 = frozenset("fpu sse2 avx fma avx2 f16c".split())
ZEN4 = ZEN3 | {"avx512f", "avx512_vnni", "avx512_bf16"}
XEON_AMX = ZEN4 | {"amx_bf16", "amx_tile", "amx_int8"}
XEON_AVX512 = ZEN3 | {"avx512f", "avx512_vnni"}


def test_parse_cpu_flags_reads_the_first_flags_line():
    text = "processor\t: 0\nflags\t\t: fpu avx2 fma\nbugs\t: none\nflags\t: other\n"
    assert cpu_features.parse_cpu_flags(text) == {"fpu", "avx2", "fma"}
    assert cpu_features.parse_cpu_flags("processor : 0\n") == frozenset()


def test_cpu_flags_of_a_missing_file_is_empty(tmp_path):
    assert cpu_features.cpu_flags(str(tmp_path / "missing")) == frozenset()


@pytest.mark.parametrize("flags, kind, native", [
    (XEON_AMX, "amx", True), (ZEN4, "avx512_bf16", True), (XEON_AVX512, "avx512", False),
    (ZEN3, "avx2", False), (frozenset({"sse2"}), "other", False)])
def test_cpu_kind_and_native_bfloat16(flags, kind, native):
    assert cpu_features.cpu_kind(flags) == kind
    assert cpu_features.native_bfloat16(flags) is native


def test_onednn_is_asked_for_on_every_avx2_kind_and_the_user_value_wins():
    for flags in (ZEN3, ZEN4, XEON_AMX):
        assert cpu_features.tensorflow_environment(flags, {}) == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert cpu_features.tensorflow_environment(ZEN3, {"TF_ENABLE_ONEDNN_OPTS": "0"}) == {}
    assert cpu_features.tensorflow_environment(frozenset(), {}) == {}


def test_apply_sets_nothing_once_tensorflow_is_imported(monkeypatch):
    import tensorflow  # noqa: F401

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert cpu_features.apply_tensorflow_environment(ZEN3) == {}


def test_bfloat16_warning_names_the_slowdown_and_the_flags_on_an_emulating_cpu():
    warning = cpu_features.bfloat16_warning("mixed_bfloat16", ZEN3)
    assert "13-60x slower" in warning and "avx2 fma" in warning and "\n" not in warning
    assert "--precision=float32" in warning


@pytest.mark.parametrize("precision, flags", [
    ("float32", ZEN3), ("mixed_float16", ZEN3), ("mixed_bfloat16", ZEN4),
    ("mixed_bfloat16", XEON_AMX), ("mixed_bfloat16", frozenset())])
def test_no_bfloat16_warning_where_nothing_is_emulated_or_unknown(precision, flags):
    assert cpu_features.bfloat16_warning(precision, flags) is None


def test_warn_if_emulated_bfloat16_logs_what_bfloat16_warning_says(monkeypatch):
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: ZEN3)
    logged = []
    monkeypatch.setattr("absl.logging.warning", logged.append)
    warning = cpu_features.warn_if_emulated_bfloat16("mixed_bfloat16")
    assert logged == [warning] and "emulates" in warning
    assert cpu_features.warn_if_emulated_bfloat16("float32") is None and len(logged) == 1
