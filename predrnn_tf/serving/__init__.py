"""Serving: SavedModel export for TF Serving (signatures, warm-up, publishing, op check).

May import config, errors, files, units, checkpoints and models; never data, training,
evaluation, cli/ or absl flags.
"""
