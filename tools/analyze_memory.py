r"""The memory-increment analysis of the paper's Fig. 3: t-SNE of delta C and delta M.

  python tools/analyze_memory.py --workdir=runs/kth_predrnn_v2 --output_dir=eval/memory
  python tools/analyze_memory.py --workdir=runs/v2 --workdir=runs/v2_beta0 --output_dir=...

Collects the increments i*g (delta C) and i'*g' (delta M) of every ST-LSTM / MIM-block layer
and step over test sequences, prints separation scores that need no eyes (a held-out linear
probe's accuracy, the silhouette, the mean |cosine| of the pairs: definitions in
predrnn_tf/analysis/memory.py) and, when scikit-learn is installed (an optional extra),
draws the t-SNE picture. Compare a decoupled model (--decouple_beta > 0) with one trained
with --decouple_beta=0. Writes memory.json and memory_tsne.png.
"""

from __future__ import annotations

import os

from absl import flags, logging

from predrnn_tf.cli import flag_parsing

flag_parsing.import_tensorflow_quietly()

from predrnn_tf import files  # noqa: E402
from predrnn_tf.analysis import memory, probes  # noqa: E402
from predrnn_tf.evaluation import charts, plots  # noqa: E402

_WORKDIR = flags.DEFINE_multi_string("workdir", None, "Training work directory (repeatable).",
                                     required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Folder for the PNG and JSON.",
                                  required=True)
_NUM_SEQUENCES = flags.DEFINE_integer("num_sequences", 32, "Test sequences collected.")
_TSNE = flags.DEFINE_boolean("tsne", True, "Draw the t-SNE picture (needs scikit-learn).")


def analyze() -> None:
    if _NUM_SEQUENCES.value < 2:
        raise ValueError(f"--num_sequences must be at least 2, got {_NUM_SEQUENCES.value}")
    results, pictures = {}, []
    for workdir in _WORKDIR.value:
        name = os.path.basename(os.path.normpath(workdir))
        model, config, checkpoint = probes.restore_for_analysis(workdir)
        batches = probes.load_test_batches(config, workdir, 8)
        collected = memory.collect_increments(model, config, batches, _NUM_SEQUENCES.value)
        scores = memory.separation_scores(collected)
        scores.update(workdir=workdir, checkpoint=checkpoint,
                      decouple_beta=config.decouple_beta)
        results[name] = scores
        pooled = scores["pooled"]
        print(f"{name} (decouple_beta={config.decouple_beta:g}): linear probe accuracy "
              f"{pooled['linear_probe_accuracy']:.3f}, silhouette {pooled['silhouette']:.3f}, "
              f"mean |cos(dC, dM)| {pooled['mean_abs_cosine']:.3f} "
              f"({scores['num_increments']} increments)")
        if _TSNE.value:
            try:
                points = memory.tsne_embedding(collected["features"])
            except ImportError as error:
                logging.warning("%s: no t-SNE picture", error)
                continue
            pictures.append(memory.draw_scatter(
                points, collected["is_m"], f"{name} (beta={config.decouple_beta:g})"))
    os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
    if pictures:
        plots.write_image(os.path.join(_OUTPUT_DIR.value, "memory_tsne.png"),
                          charts.tile_images(pictures, columns=min(len(pictures), 3)))
    path = files.write_json(os.path.join(_OUTPUT_DIR.value, "memory.json"), results)
    print(f"wrote {path}" + (" and memory_tsne.png" if pictures else ""))


if __name__ == "__main__":
    flag_parsing.run_tool(analyze, errors=(ValueError, OSError))
