"""Analyses of trained models and the paper's tables: the library code under ``tools/``.

Owns the gradient analysis of Fig. 8 (``gradients``), the memory-increment analysis of
Fig. 3 (``memory``: collection, separation scores, optional t-SNE), the hooks that read a
recurrent cell's outputs during an unroll (``probes``), the table definitions and the
paper's numbers (``tables``), the row driver of ``tools/reproduce.py`` (``reproduce``), and the
speed and memory measurements of ``tools/benchmark*.py`` (``benchmarking``, ``memory_probes``).
May import config, errors, files, units, checkpoints, models, layers, data, evaluation and
training; never serving, cli/ or absl flags.
"""

# The public modules, which tools may import; listed, not imported here (no import circle).
__all__ = ["benchmarking", "fidelity", "gradients", "memory", "memory_probes", "probes",
           "reproduce", "tables"]
