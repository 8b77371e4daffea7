"""A worker for ``tools/launch_local.py --module=tests.shard_probe -- DATA_DIR``.

Builds the multi-worker strategy from the ``TF_CONFIG`` the launcher set, reads the ``ids``
dataset of ``DATA_DIR`` (record ``i`` has every pixel ``i``) through
``distribute_datasets_from_function`` and the reader, as training does, and prints one line
``PROBE {"context": [[pipeline_id, pipelines]], "ids": [...]}``. Used by
``tests/test_launch_local.py``.
"""

import json
import sys

import tensorflow as tf

from predrnn_tf.data import reader


def main(data_dir: str) -> None:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    contexts = []

    def dataset_fn(context):
        contexts.append([context.input_pipeline_id, context.num_input_pipelines])
        return reader.make_dataset(data_dir, "ids", "train", 1, 3, shuffle=True, repeat=False,
                                   seed=7, input_context=context)

    ids = []
    for batch in strategy.distribute_datasets_from_function(dataset_fn):
        for part in strategy.experimental_local_results(batch):
            ids.append(round(float(part.numpy()[0, 0, 0, 0, 0]) * 255))
    print("PROBE " + json.dumps({"context": contexts, "ids": sorted(ids)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
