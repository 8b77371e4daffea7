"""What this CPU offers, and the choices that follow from it: oneDNN, and bfloat16.

Pure functions of the CPU's feature flags (the ``flags`` line of ``/proc/cpuinfo``, the same
set ``lscpu`` prints), so each choice is testable with any flag set:

- :func:`cpu_kind`: the kind of x86 CPU the benchmarks were measured on (BUILD.md,
  "Benchmarks"): ``amx``, ``avx512_bf16``, ``avx512``, ``avx2`` or ``other``.
- :func:`tensorflow_environment`: the environment TensorFlow must see *before it is imported*.
  TF 2.21 turns its oneDNN kernels on by default only on CPUs with AVX512_VNNI, AVX512_BF16
  or AMX; on an AVX2-only CPU it falls back to Eigen's convolutions, which ran the paper's
  update 0.68x the official PyTorch code's speed there. oneDNN is asked for on every x86
  kind with AVX2 (what the AVX-512 kinds already get by default); a value the user set wins.
- :func:`bfloat16_warning`: a one-line warning when ``mixed_bfloat16`` is asked for on a
  CPU without bfloat16 instructions, where TensorFlow emulates it 13-60x slower than
  float32 (Eigen 13x; oneDNN's bfloat16 backward convolutions slower still). A warning, not a
  refusal: a bfloat16 SavedModel exported on such a machine serves fast on an AMX one, and
  the default precision is float32, so only an explicit request meets it.
"""

from __future__ import annotations

import os
import sys

BFLOAT16_INSTRUCTIONS = frozenset({"avx512_bf16", "amx_bf16"})
# Measured on AMD EPYC Zen 3 (AVX2 only), issue 34: TF's bfloat16 convolution at the paper's
# conv_h shape, forward + backward, 7 GFLOP/s against 91 in float32 with Eigen (13x); with
# oneDNN its bfloat16 backward convolutions ran 60x slower than float32 (loaded machine).
EMULATED_BFLOAT16_SLOWDOWN = "13-60x"
DECIDING_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16",
                  "amx_tile")


def parse_cpu_flags(cpuinfo_text: str) -> frozenset[str]:
    """The feature flags of the first ``flags`` line of a ``/proc/cpuinfo`` text."""
    for line in cpuinfo_text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """This machine's CPU feature flags (empty where ``path`` cannot be read)."""
    try:
        with open(path) as handle:
            return parse_cpu_flags(handle.read())
    except OSError:
        return frozenset()


def native_bfloat16(flags: frozenset[str]) -> bool:
    """True if the CPU has bfloat16 instructions (AVX512_BF16 or AMX-BF16)."""
    return bool(flags & BFLOAT16_INSTRUCTIONS)


def cpu_kind(flags: frozenset[str]) -> str:
    """``amx``, ``avx512_bf16``, ``avx512``, ``avx2`` or ``other`` (no AVX2 or not x86)."""
    if "amx_bf16" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512_bf16"
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    return "other"


def describe_flags(flags: frozenset[str]) -> str:
    """The flags that decide convolution speed, as ``lscpu`` spells them, or ``none``."""
    return " ".join(flag for flag in DECIDING_FEATURES if flag in flags) or "none"


def tensorflow_environment(flags: frozenset[str], environment: dict[str, str]) -> dict[str, str]:
    """Variables to add to ``environment`` before TensorFlow is imported (none it sets).

    ``TF_ENABLE_ONEDNN_OPTS=1`` on every kind with AVX2: TensorFlow's oneDNN convolutions
    beat its Eigen ones on the AVX2-only kind and are already TF's default on the AVX-512
    kinds. A value already in ``environment`` (the user's) is kept.
    """
    wanted = {}
    if cpu_kind(flags) != "other":
        wanted["TF_ENABLE_ONEDNN_OPTS"] = "1"
    return {name: value for name, value in wanted.items() if name not in environment}


def apply_tensorflow_environment(flags: frozenset[str] | None = None) -> dict[str, str]:
    """Sets :func:`tensorflow_environment` in ``os.environ``; call before importing TF.

    Returns:
      The variables set (empty if TensorFlow was already imported: too late to matter).
    """
    if "tensorflow" in sys.modules:
        return {}
    added = tensorflow_environment(cpu_flags() if flags is None else flags, dict(os.environ))
    os.environ.update(added)
    return added


def bfloat16_warning(precision: str, flags: frozenset[str]) -> str | None:
    """One warning line if ``precision`` computes in bfloat16 on a CPU that emulates it.

    Args:
      precision: the Keras dtype policy name (``float32``, ``mixed_bfloat16``, ...).
      flags: the CPU's feature flags (:func:`cpu_flags`); empty (not Linux) warns nothing.

    Returns:
      None when there is nothing to warn about.
    """
    if "bfloat16" not in precision or not flags or native_bfloat16(flags):
        return None
    return (f"--precision={precision} on a CPU without bfloat16 instructions (flags: "
            f"{describe_flags(flags)}; no avx512_bf16 or amx_bf16): TensorFlow emulates "
            f"bfloat16 here, {EMULATED_BFLOAT16_SLOWDOWN} slower than float32 "
            f"(issue 34). Use --precision=float32 on this machine.")


def warn_if_emulated_bfloat16(precision: str) -> str | None:
    """Logs :func:`bfloat16_warning` for this machine's CPU; returns it (None: no warning).

    The one call a start-up needs (training, export, predict, evaluate), once the precision
    is known.
    """
    from absl import logging

    warning = bfloat16_warning(precision, cpu_flags())
    if warning:
        logging.warning(warning)
    return warning
