"""Alias of :mod:`predrnn_tf.cli.evaluate` (see CHANGELOG.md).

Keeps ``python -m predrnn_tf.evaluate`` working.
"""

from predrnn_tf.cli.evaluate import console_main, main  # noqa: F401

if __name__ == "__main__":
    console_main()
