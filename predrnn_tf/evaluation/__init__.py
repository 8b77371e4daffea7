"""Evaluation: the paper's metrics, radar verification, baselines, LPIPS, charts and plots.

May import config, errors, files, units, checkpoints and models; never training, serving,
cli/ or absl flags.
"""
