"""Converters from raw public formats (Moving MNIST, KTH, radar archives) to the TFRecord schema.

Per-dataset modules (``moving_mnist``, ``kth``, ``radar``) only decode bytes; ``windows``,
``imaging`` and ``publishing`` are shared. May import config, errors, files, units and
``data.schema``; never models, training, evaluation, serving or cli/.
"""
