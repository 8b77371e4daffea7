"""Data: the one TFRecord schema, the tf.data reader, synthetic data and the converters.

Per-dataset code (in ``converters/``) only decodes bytes; shared code normalises, windows,
batches. May import config, errors, files and units; never models, training, evaluation,
serving or cli/.
"""

# The public modules, which tools may import; listed, not imported here (no import circle).
__all__ = ["converters", "mixing", "reader", "scale_out", "schema", "sources", "synthetic_radar",
           "wetness"]
