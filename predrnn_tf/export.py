"""Alias of :mod:`predrnn_tf.cli.export` (see CHANGELOG.md).

Keeps ``python -m predrnn_tf.export`` working.
"""

from predrnn_tf.cli.export import console_main, main  # noqa: F401

if __name__ == "__main__":
    console_main()
