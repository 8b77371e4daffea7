"""Recurrent cells: each owns exactly one time step.

May import only keras/TensorFlow and errors; never models, data, training or absl.
"""

from predrnn_tf.layers.conv_lstm_cell import ConvLSTMCell
from predrnn_tf.layers.st_lstm_cell import SpatioTemporalLSTMCell
from predrnn_tf.layers.zigzag_memory_cell import ZigzagMemoryCell

__all__ = ["ConvLSTMCell", "SpatioTemporalLSTMCell", "ZigzagMemoryCell"]
