"""tools/launch_local.py: each worker it starts reads its own records (slow: two processes).

The fast check of the same sharding, with the InputContext the strategy makes, is
``tests/test_reader.py::test_each_worker_reads_its_own_records``; this one goes through the
launcher's TF_CONFIG and the real multi-worker strategy (about 20 s quiet, 60 s loaded).
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from predrnn_tf.data import schema

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
@pytest.mark.parametrize("per_shard", [10, 40])  # by file (4 shards), by record (1 shard)
def test_the_launched_workers_read_disjoint_records(tmp_path, per_shard):
    with schema.ShardedWriter(str(tmp_path), "ids", "train", per_shard) as writer:
        for index in range(40):
            writer.write(np.full((3, 8, 8, 1), index, np.uint8), str(index))
    schema.write_metadata(str(tmp_path), "ids", {
        "image_height": 8, "image_width": 8, "channels": 1, "sequence_length": 3,
        "num_train": 40, "num_test": 0})
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "tools/launch_local.py", "--num_workers=2", "--timeout=300",
         "--module=tests.shard_probe", "--", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=360)
    assert result.returncode == 0, result.stderr[-3000:]
    probes = {int(worker): json.loads(line) for worker, line in
              re.findall(r"\[worker (\d)\] PROBE (.*)", result.stdout)}
    assert sorted(probes) == [0, 1]
    assert [probes[worker]["context"] for worker in (0, 1)] == [[[0, 2]], [[1, 2]]]
    first, second = (set(probes[worker]["ids"]) for worker in (0, 1))
    assert first and second and not first & second and first | second == set(range(40))
