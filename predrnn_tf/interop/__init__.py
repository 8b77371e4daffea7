"""Interoperability: the official PyTorch checkpoint layout, in and out (torch lazily).

``pytorch`` (official PredRNN) and ``mim_pytorch`` (OpenSTL MIM) map checkpoint layouts;
``official_predrnn`` is the official PyTorch model transcribed (imports torch at the top).

May import config, errors, files, checkpoints and models; never data, training, cli/.
"""

# The public modules, which tools may import; listed, not imported here (no import circle).
__all__ = ["mim_pytorch", "official_predrnn", "pytorch"]
