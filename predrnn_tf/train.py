"""Alias of :mod:`predrnn_tf.cli.train` (see CHANGELOG.md).

Keeps ``python -m predrnn_tf.train`` working.
"""

from predrnn_tf.cli.train import console_main, main  # noqa: F401

if __name__ == "__main__":
    console_main()
