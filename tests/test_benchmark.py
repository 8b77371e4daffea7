"""analysis/benchmarking.py (behind tools/benchmark.py): the conv peak times every convolution
it credits."""

import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_PROGRAM = """
import tensorflow as tf
from predrnn_tf.analysis import benchmarking
conv_pass = benchmarking.make_conv_pass(3, 8, 16, 2, 8, tf.float32, backward=True)
result = conv_pass()
print("RESULT", tf.nest.map_structure(lambda tensor: tuple(tensor.shape), result))
"""


@pytest.fixture(scope="module")
def conv_pass_run() -> tuple[str, dict[str, int]]:
    """Runs one forward + backward conv pass with oneDNN's verbose log, once for the module;
    returns its printed result and the count of executed convolutions per oneDNN
    propagation kind."""
    environment = dict(os.environ, ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="3",
                       TF_ENABLE_ONEDNN_OPTS="1")  # as training sets it (cpu_features)
    result = subprocess.run([sys.executable, "-c", _PROGRAM],
                            capture_output=True, text=True, env=environment, cwd=REPO_ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    kinds: dict[str, int] = {}
    for line in result.stdout.splitlines():
        fields = line.split(",")
        if line.startswith("onednn_verbose") and fields[3:6] == ["exec", "cpu", "convolution"]:
            kinds[fields[7]] = kinds.get(fields[7], 0) + 1
    printed = [line for line in result.stdout.splitlines() if line.startswith("RESULT")]
    return printed[0], kinds


def test_conv_pass_returns_the_forward_output_beside_both_gradients(conv_pass_run):
    printed, _ = conv_pass_run
    assert printed == "RESULT ((2, 8, 8, 16), [(2, 8, 8, 8), (3, 3, 8, 16)])"


def test_conv_pass_executes_forward_and_both_backward_convolutions(conv_pass_run):
    # The gradients of a convolution do not need its output: a pass returning only them let
    # TF prune the forward convolution, and the peak credited 3 convolutions for 2 timed.
    _, kinds = conv_pass_run
    if not kinds:
        pytest.skip("TensorFlow does not run its convolutions through oneDNN here")
    assert set(kinds) == {"forward_training", "backward_data", "backward_weights"}, kinds
