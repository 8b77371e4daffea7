"""Interoperability: the official PyTorch checkpoint layout, in and out (torch lazily).

May import config, errors, files, checkpoints and models; never data, training, cli/.
"""
