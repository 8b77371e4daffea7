"""Thin entry points: the only modules (with tools/) that read absl flags.

Each command parses its flags, builds a frozen Config or options dataclass and calls one
library function. May import anything in the package; nothing imports cli/ except the
``predrnn_tf.train`` / ``evaluate`` / ``export`` aliases.
"""

# The public modules, which tools may import; listed, not imported here (no import circle).
__all__ = ["flag_parsing"]
