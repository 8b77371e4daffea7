"""The stock-op check: every op of an exported graph must be registered in plain TensorFlow.

TF Serving has no custom ops, so a graph that needs one would load nowhere.
"""

from __future__ import annotations

import os

import tensorflow as tf

from predrnn_tf.errors import ExportError


def graph_ops(saved_model_dir: str) -> set[str]:
    """Every op type in the SavedModel's graphs and function library (function calls excluded)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as handle:
        saved_model.ParseFromString(handle.read())
    ops, functions = set(), set()
    for meta_graph in saved_model.meta_graphs:
        graph = meta_graph.graph_def
        ops.update(node.op for node in graph.node)
        for function in graph.library.function:
            functions.add(function.signature.name)
            ops.update(node.op for node in function.node_def)
    return ops - functions


def unregistered_ops(op_names) -> list[str]:
    """The op names not registered in this (plain) TensorFlow, sorted."""
    from tensorflow.python.framework import op_def_registry

    return sorted(name for name in op_names if op_def_registry.get(name) is None)


def check_stock_ops(saved_model_dir: str) -> list[str]:
    """The sorted op types of a SavedModel; ExportError if one is unknown to plain TensorFlow."""
    ops = sorted(graph_ops(saved_model_dir))
    missing = unregistered_ops(ops)
    if missing:
        raise ExportError(f"the exported graph uses ops unknown to plain TensorFlow: "
                          f"{', '.join(missing)}")
    return ops
