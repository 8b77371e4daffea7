"""converters/parallel.py: the order-preserving, bounded process pool."""

from __future__ import annotations

import math

import pytest

from predrnn_tf.data.converters import parallel
from predrnn_tf.errors import ConfigError


def test_results_come_back_in_order_from_two_processes():
    items = [9, 1, 7, 3, 5, 2]
    assert list(parallel.ordered_map(math.factorial, items, num_workers=2)) == [
        math.factorial(item) for item in items]


def test_one_worker_runs_in_this_process_lazily():
    consumed = []

    def items():
        for item in range(100):
            consumed.append(item)
            yield item

    results = parallel.ordered_map(abs, items(), num_workers=1)
    assert next(results) == 0
    assert consumed == [0]  # the generator is read lazily


def test_a_pool_reads_at_most_max_in_flight_items_ahead():
    consumed = []

    def items():
        for item in range(1000):
            consumed.append(item)
            yield item

    results = parallel.ordered_map(abs, items(), num_workers=2, max_in_flight=3)
    assert next(results) == 0
    assert len(consumed) == 3  # not the whole archive
    results.close()


def test_a_worker_error_is_raised_in_order():
    with pytest.raises(ValueError, match="math domain error"):
        list(parallel.ordered_map(math.sqrt, [4.0, -1.0, 9.0], num_workers=2))


@pytest.mark.parametrize("value", [-1, 1.5, True, parallel.MAX_WORKERS + 1])
def test_num_workers_out_of_range_names_the_flag(value):
    with pytest.raises(ConfigError, match="--num_workers"):
        parallel.check_num_workers(value)


def test_zero_workers_means_one_per_core():
    assert parallel.check_num_workers(0) >= 1
