r"""The gradient analyses of the paper's Fig. 8 for trained models: PNG + JSON.

  python tools/analyze_gradients.py --workdir=runs/mnist_predrnn_v2 --output_dir=eval/grads
  python tools/analyze_gradients.py --workdir=runs/v2 --workdir=runs/no_top_down \
      --output_dir=eval/grads        # several models in one picture (names: folder names)

Left: ||dL_{T+K} / dH_t^1|| over t (how far back the last frame's loss reaches: the memory-
flow variants); right: (1/(T-1)) sum_{tau=2..T} ||dL_t / dH_tau^1|| over the forecast frames
t > T (how much the forecast uses the context: with and without reverse scheduled sampling).
Each curve is divided by its largest value. Definitions: predrnn_tf/analysis/gradients.py.
Writes gradients.json (raw and normalised) and gradients.png.
"""

from __future__ import annotations

import os

from absl import flags

from predrnn_tf.cli import flag_parsing

flag_parsing.import_tensorflow_quietly()

from predrnn_tf import files  # noqa: E402
from predrnn_tf.analysis import gradients, probes  # noqa: E402
from predrnn_tf.evaluation import charts, plots  # noqa: E402

_WORKDIR = flags.DEFINE_multi_string("workdir", None, "Training work directory (repeatable).",
                                     required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Folder for the PNG and JSON.",
                                  required=True)
_NUM_SEQUENCES = flags.DEFINE_integer("num_sequences", 16, "Test sequences averaged.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 4, "Sequences per backward pass.")


def analyze() -> None:
    if _NUM_SEQUENCES.value < 1:
        raise ValueError(f"--num_sequences must be positive, got {_NUM_SEQUENCES.value}")
    results = {}
    for workdir in _WORKDIR.value:
        model, config, checkpoint = probes.restore_for_analysis(workdir)
        batches = probes.load_test_batches(config, workdir, _BATCH_SIZE.value)
        result = gradients.gradient_curves(model, config, batches, _NUM_SEQUENCES.value)
        result.update(workdir=workdir, checkpoint=checkpoint, model_name=config.model_name)
        results[os.path.basename(os.path.normpath(workdir))] = result
    left = charts.draw_line_chart(
        {name: r["memory_flow"]["norm_normalised"] for name, r in results.items()},
        "||dL_T+K / dH_t^1|| (normalised)", x_label="t")
    right = charts.draw_line_chart(
        {name: r["reverse_sampling"]["norm_normalised"] for name, r in results.items()},
        "mean_tau<=T ||dL_t / dH_tau^1|| (normalised)", x_label="t - T")
    os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
    plots.write_image(os.path.join(_OUTPUT_DIR.value, "gradients.png"),
                      charts.tile_images([left, right], columns=2))
    path = files.write_json(os.path.join(_OUTPUT_DIR.value, "gradients.json"), results)
    for name, result in results.items():
        flow = ", ".join(f"{value:.3f}" for value in result["memory_flow"]["norm_normalised"])
        context = ", ".join(f"{value:.3f}"
                            for value in result["reverse_sampling"]["norm_normalised"])
        print(f"{name}: memory flow (t=1..): {flow}")
        print(f"{name}: context use (t=T+1..): {context}")
    print(f"wrote {path} and gradients.png")


if __name__ == "__main__":
    flag_parsing.run_tool(analyze, errors=(ValueError, OSError))
