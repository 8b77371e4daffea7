r"""Runs one of the paper's tables, row by row, and prints it beside the paper's numbers.

  python tools/reproduce.py --table=1 --data_dir=/tmp/mnist --output_dir=/tmp/paper_tables
  python tools/reproduce.py --table=3 --budget=paper --data_dir=... --output_dir=...
  python tools/reproduce.py --table=2 --rows=no_top_down --data_dir=... --output_dir=...

Tables (predrnn_tf/analysis/tables.py): 1 ConvLSTM / PredRNN / PredRNN-V2, 2 memory-flow
ablation, 3 MIM with and without the decoupling loss, 4 scheduled vs reverse scheduled
sampling (Moving MNIST), 5 KTH, 6 radar. Each row trains (resumable: re-run the same command
after an interruption), then is scored with the paper's metrics; persistence and
extrapolation are scored beside them; a row already finished in another table with the same
setting is reused. Budgets: ``small`` (2 x 32 model, 1,000 iterations, 7-21 min per row on
2 CPU cores by model), ``paper`` (the paper's 80,000 iterations of 4 x 128,
for a GPU), ``smoke`` (seconds: checks the plumbing only, numbers mean nothing).
The markdown table goes to stdout and to OUTPUT_DIR/table{N}/{budget}/table.md.
"""

from __future__ import annotations

import os

from absl import flags, logging

from predrnn_tf.cli import flag_parsing

flag_parsing.import_tensorflow_quietly()

from predrnn_tf import files  # noqa: E402
from predrnn_tf.analysis import reproduce  # noqa: E402

_TABLE = flags.DEFINE_integer("table", None, "Table number: 1-6.", required=True)
_BUDGET = flags.DEFINE_enum("budget", "small", ["small", "paper", "smoke"], "Training budget.")
_DATA_DIR = flags.DEFINE_string("data_dir", "", "The table's dataset (see --helpfull).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "paper_tables", "Work directories, results.")
_ROWS = flags.DEFINE_list("rows", [], "Run only these rows (names as in the table module).")
_LPIPS_WEIGHTS = flags.DEFINE_string("lpips_weights", "",
                                     "LPIPS weights (tools/convert_lpips_weights.py).")
_PRINT_ONLY = flags.DEFINE_boolean("print_only", False, "Print the finished rows, run none.")


def main() -> None:
    table = reproduce.table_of(_TABLE.value)
    extra = (f"--lpips_weights={_LPIPS_WEIGHTS.value}",) if _LPIPS_WEIGHTS.value else ()
    plan = reproduce.Plan(table, _BUDGET.value, _DATA_DIR.value, _OUTPUT_DIR.value, extra)
    if _PRINT_ONLY.value:
        names = [row.name for row in table.rows] + list(reproduce.BASELINES)
        results = {name: reproduce.run_row(plan, name, runner=_refuse) for name in names
                   if os.path.exists(os.path.join(plan.row_dir(name),
                                                  reproduce.RESULT_FILENAME))}
    else:
        results = reproduce.run_table(plan, _ROWS.value or None,
                                      on_row=lambda name: logging.info("row %s", name))
    markdown = reproduce.format_table(plan, results)
    path = os.path.join(_OUTPUT_DIR.value, f"table{table.number}", _BUDGET.value, "table.md")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    files.write_text(path, markdown + "\n")
    print(markdown)


def _refuse(command):
    raise RuntimeError(f"--print_only runs nothing: {command}")


if __name__ == "__main__":
    import subprocess

    flag_parsing.run_tool(main, errors=(ValueError, OSError, subprocess.CalledProcessError))
