"""Serving: SavedModel export for TF Serving (signatures, warm-up, publishing, op check).

May import config, errors, files, units, checkpoints, workdir and models; never data,
training, evaluation, cli/ or absl flags.
"""

# The public modules, which tools may import; listed, not imported here (no import circle).
__all__ = ["exporter", "graph_ops", "local_server", "publishing", "signatures", "warmup"]
