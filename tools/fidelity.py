r"""Training fidelity: our trainer against the official PyTorch code (a transcription).

Two modes (torch needed for the official side; ``pip install torch``):

``--mode=updates``: identical start. Our model's initial weights are copied into the official
network, both take ``--steps`` updates on the same batches and the same masks (reverse_input
included: two updates per iteration), and the losses and weights are compared step by step,
once with our default optimizer (PyTorch's Adam) and once with ``--keras_adam``. Minutes.

``--mode=train``: the same-budget comparison of issue 14, every variant x seed trained for
``--max_iterations`` and tested on the whole test split with the official metric (per-frame
MSE, summed over pixels of clipped [0, 1] frames). Variants: ``ours`` (our trainer and
reader, default flags), ``ours_keras_adam`` (``--keras_adam``), ``official`` (the
transcription trained with the official loop: per-epoch permutation, reverse_schedule_
sampling_exp masks from itr 1, two updates per iteration). Resumable: finished
(variant, seed) results in ``OUTPUT_DIR/results/*.json`` are kept; ours resume from their
checkpoints and the official run from its state file (``official-seedN.pt``, every 25
iterations), so a run longer than a session can be interrupted and started again with the
same command. ``--deterministic`` trains ours with ``--deterministic=true`` (its seeded
input order and op determinism: a seed then fixes the whole run, as it does for the official
variant). The full comparison (3 variants x 3 seeds x 1000 iterations) is one command:

  python tools/fidelity.py --mode=train --data_dir=/tmp/mnist --output_dir=/tmp/fidelity \
      --variants=ours,ours_keras_adam,official --seeds=0,1,2 --max_iterations=1000

(ours about 3 s per iteration at this size on 2 CPU cores; the official run about 5.5 s
with one PyTorch thread, see ``--official_threads``). Build the data with
``python tools/make_moving_mnist.py --test_images=.../t10k-images-idx3-ubyte.gz
--split_test_digits=8000 --num_test=2000 --output_dir=/tmp/mnist``.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time

from absl import flags

from predrnn_tf.cli import flag_parsing

flag_parsing.import_tensorflow_quietly()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from predrnn_tf import files  # noqa: E402
from predrnn_tf.analysis import fidelity  # noqa: E402
from predrnn_tf.config import Config, validate_config  # noqa: E402
from predrnn_tf.errors import ConfigError  # noqa: E402

# The issue's setting (predrnn_v2 3x64, 3x3, patch 4, RSS 250/750/100, lr 5e-4, batch 8).
ISSUE_FLAGS = dict(
    model_name="predrnn_v2", dataset_name="mnist", img_width=64, img_channel=1, patch_size=4,
    num_hidden=(64, 64, 64), filter_size=3, layer_norm=False, input_length=10,
    total_length=20, decouple_beta=0.1, reverse_scheduled_sampling=True,
    r_sampling_step_1=250, r_sampling_step_2=750, r_exp_alpha=100.0, lr=5e-4, batch_size=8,
    reverse_input=True)
VARIANTS = ("ours", "ours_keras_adam", "official")
_OFFICIAL_SAVE_EVERY = 25  # iterations between the official run's resumable states

_MODE = flags.DEFINE_enum("mode", "updates", ["updates", "train"], "See the module docstring.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Moving MNIST TFRecords (name mnist).",
                                required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Results and work directories.",
                                  required=True)
_VARIANTS = flags.DEFINE_list("variants", list(VARIANTS), f"Subset of {VARIANTS}.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (weights, masks, data order).")
_MAX_ITERATIONS = flags.DEFINE_integer("max_iterations", 1000, "Iterations per run.")
_STEPS = flags.DEFINE_integer("steps", 3, "--mode=updates: iterations compared.")
_NUM_HIDDEN = flags.DEFINE_list("num_hidden", ["64", "64", "64"], "Model size.")
_NUM_TEST = flags.DEFINE_integer("num_test", 0, "Test sequences used (0: all).")
_DETERMINISTIC = flags.DEFINE_boolean(
    "deterministic", False,
    "Train ours with --deterministic=true (seeded input order, op determinism): a fixed "
    "seed then gives the same run. Does not change the official variant, whose order, "
    "masks and weights are always seeded.")
_OFFICIAL_THREADS = flags.DEFINE_integer(
    "official_threads", 1,
    "PyTorch threads of the official side (0: PyTorch's default, one per core). 1 by "
    "default: on a shared machine an OpenMP team of 2 waits at every one of the thousands "
    "of barriers of an update for a descheduled partner (measured 59 s per update with 2 "
    "threads vs 2.75 s with 1, at load 6.7 on 2 cores).")


def make_official_model(config: Config):
    """The official model and Adam for ``config``, set up for speed on CPU.

    ``--official_threads`` PyTorch threads and NHWC (channels_last) convolution weights:
    the same operations on the same values as the official code (PyTorch's NCHW
    convolutions on CPU reorder every input, output and weight into oneDNN's blocked layout
    at every call; NHWC needs no reorder of the activations).
    """
    import torch

    from predrnn_tf.interop import official_predrnn

    if _OFFICIAL_THREADS.value < 0:
        raise ConfigError(f"--official_threads must be >= 0, got {_OFFICIAL_THREADS.value}")
    if _OFFICIAL_THREADS.value:
        torch.set_num_threads(_OFFICIAL_THREADS.value)
    return official_predrnn.OfficialModel(config, memory_format=torch.channels_last)


def issue_config(seed: int, keras_adam: bool = False) -> Config:
    """The issue's configuration with our data folder, seed, optimizer and determinism."""
    hidden = tuple(int(size) for size in _NUM_HIDDEN.value)
    return validate_config(Config(**{**ISSUE_FLAGS, "num_hidden": hidden},
                                  data_dir=_DATA_DIR.value, seed=seed, keras_adam=keras_adam,
                                  max_iterations=_MAX_ITERATIONS.value,
                                  deterministic=_DETERMINISTIC.value))


# --- mode=updates ----------------------------------------------------------------------------
def compare_updates(config: Config, steps: int) -> dict:
    """Our train step and the official update from the same weights, batches and masks."""
    import torch

    from predrnn_tf.interop import official_predrnn, pytorch
    from predrnn_tf.training import schedules
    from predrnn_tf.training.trainer import Trainer

    trainer = Trainer(config, os.path.join(_OUTPUT_DIR.value, "updates_tmp"),
                      tf.distribute.get_strategy())
    reference = make_official_model(config)
    state = pytorch.model_state_dict(trainer.model, config)
    reference.network.load_state_dict({key: torch.from_numpy(value.copy())
                                       for key, value in state.items()})
    train = fidelity.load_split(config.data_dir, "mnist", "train", config.total_length,
                              limit=steps * config.batch_size)
    batches = [train[index * config.batch_size:(index + 1) * config.batch_size]
               .astype(np.float32) / 255.0 for index in range(steps)]
    trainer.train_iterator = iter(tf.data.Dataset.from_tensor_slices(np.stack(batches)))
    step_function = trainer.make_train_step()
    generator = tf.random.Generator.from_seed(config.seed)  # the trainer's mask stream
    rows = []
    for step, frames in enumerate(batches):
        encoder, decoder = schedules.sampling_probabilities(config, step)
        mask = schedules.draw_mask(generator, config.batch_size, encoder, decoder, config)
        ours = step_function(trainer.train_iterator, encoder, decoder)
        full_mask = official_predrnn.official_mask(mask.numpy(), config)
        patched = official_predrnn.reshape_patch(frames, config.patch_size)
        loss = reference.train(patched, full_mask)
        loss = (loss + reference.train(np.flip(patched, axis=1).copy(), full_mask)) / 2.0
        ours_state = pytorch.model_state_dict(trainer.model, config)
        theirs = reference.network.state_dict()
        worst = max(float(np.max(np.abs(ours_state[key] - theirs[key].numpy())) /
                          max(float(np.max(np.abs(theirs[key].numpy()))), 1e-12))
                    for key in ours_state)
        print(f"keras_adam={config.keras_adam}: iteration {step + 1} compared", flush=True)
        rows.append({"iteration": step + 1, "loss_ours": float(ours["loss"]),
                     "loss_official": float(loss), "max_relative_weight_difference": worst})
    return {"keras_adam": config.keras_adam, "steps": rows}


def run_updates() -> None:
    os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
    results = [compare_updates(issue_config(0, keras_adam), _STEPS.value)
               for keras_adam in (False, True)]
    for result in results:
        name = "keras Adam" if result["keras_adam"] else "torch Adam (default)"
        for row in result["steps"]:
            print(f"{name}: iteration {row['iteration']}: loss ours {row['loss_ours']:.7f} "
                  f"official {row['loss_official']:.7f}; weights max relative difference "
                  f"{row['max_relative_weight_difference']:.2e}")
    path = files.write_json(os.path.join(_OUTPUT_DIR.value, "updates.json"), {"runs": results})
    print(f"wrote {path}")


# --- mode=train ------------------------------------------------------------------------------
def ours_command(config: Config, workdir: str) -> list[str]:
    """The command line of our trainer for ``config`` (it resumes from ``workdir``)."""
    return [sys.executable, "-m", "predrnn_tf.train", f"--workdir={workdir}",
               f"--data_dir={config.data_dir}", "--dataset_name=mnist",
               f"--model_name={config.model_name}",
               f"--num_hidden={','.join(map(str, config.num_hidden))}",
               f"--filter_size={config.filter_size}", f"--patch_size={config.patch_size}",
               "--layer_norm=false", f"--input_length={config.input_length}",
               f"--total_length={config.total_length}", f"--decouple_beta={config.decouple_beta}",
               "--reverse_scheduled_sampling=true",
               f"--r_sampling_step_1={config.r_sampling_step_1}",
               f"--r_sampling_step_2={config.r_sampling_step_2}",
               f"--r_exp_alpha={config.r_exp_alpha}", f"--lr={config.lr}",
               f"--batch_size={config.batch_size}", "--reverse_input=true",
               f"--max_iterations={config.max_iterations}", f"--seed={config.seed}",
               f"--keras_adam={str(config.keras_adam).lower()}",
               f"--deterministic={str(config.deterministic).lower()}",
               f"--test_interval={config.max_iterations}",
               f"--snapshot_interval={max(config.max_iterations // 10, 1)}",
               "--num_test_batches=1", "--display_interval=100000"]


def train_ours(config: Config, workdir: str) -> None:
    """Our trainer through its command line (resumes from the work directory)."""
    subprocess.run(ours_command(config, workdir), check=True)


def evaluate_ours(workdir: str, test: np.ndarray, input_length: int) -> dict:
    from predrnn_tf.checkpoints import restore
    from predrnn_tf.models.forecasting import make_forecast_function

    model, config = restore(workdir)
    forecast = make_forecast_function(model, config.output_length)
    return fidelity.per_frame_test_mse(lambda inputs: forecast(tf.constant(inputs)).numpy(),
                                       test, input_length)


def train_official(config: Config, train: np.ndarray, test: np.ndarray,
                   state_path: str) -> dict:
    """The transcription trained with the official loop, then tested like the official_predrnn.

    Resumable: every ``_OFFICIAL_SAVE_EVERY`` iterations the weights, Adam's state, the data
    order and the mask generator are saved to ``state_path``; a later run continues there
    (the same updates as one uninterrupted run: tests/test_torch_import.py).
    """
    import torch

    from predrnn_tf.interop import official_predrnn

    torch.manual_seed(config.seed)
    model = make_official_model(config)
    order = fidelity.OfficialOrder(len(train), config.batch_size, config.seed)
    rng = np.random.default_rng(config.seed + 1000)
    start = 0
    if os.path.exists(state_path):
        extra = model.load(state_path)
        order.set_state(extra["order"])
        rng.bit_generator.state = extra["masks"]
        start = extra["iteration"]
        print(f"official seed {config.seed}: resumed at iteration {start}", flush=True)
    clock = time.monotonic()
    for iteration in range(start + 1, config.max_iterations + 1):
        frames = train[order.next_indices()].astype(np.float32) / 255.0
        patched = official_predrnn.reshape_patch(frames, config.patch_size)
        reverse_mask = fidelity.official_reverse_mask(config, iteration, rng)
        mask = official_predrnn.official_mask(reverse_mask, config)
        model.train(patched, mask)
        model.train(np.flip(patched, axis=1).copy(), mask)  # reverse_input
        if iteration % _OFFICIAL_SAVE_EVERY == 0:
            model.save(state_path, iteration=iteration, order=order.get_state(),
                       masks=rng.bit_generator.state)
            pace = (time.monotonic() - clock) / _OFFICIAL_SAVE_EVERY
            clock = time.monotonic()
            print(f"official seed {config.seed}: iteration {iteration} "
                  f"({pace:.1f} s/iteration, load {os.getloadavg()[0]:.1f})", flush=True)
    return fidelity.per_frame_test_mse(
        lambda inputs: official_forecast(model, inputs, config), test, config.input_length)


def official_forecast(model, inputs: np.ndarray, config: Config) -> np.ndarray:
    """``trainer.test``: the official test mask (true inputs, then its own predictions)."""
    import torch

    from predrnn_tf.interop import official_predrnn

    batch = inputs.shape[0]
    padded = np.concatenate([inputs, np.zeros((batch, config.output_length, *inputs.shape[2:]),
                                              np.float32)], axis=1)
    flags_ = np.zeros((batch, config.total_length - 2), np.float32)
    flags_[:, :config.input_length - 1] = 1.0
    mask = official_predrnn.official_mask(flags_, config)
    with torch.no_grad():
        generated = model.network(torch.FloatTensor(official_predrnn.reshape_patch(
            padded, config.patch_size)), torch.FloatTensor(mask))[0]
    frames = official_predrnn.reshape_patch_back(generated.numpy(), config.patch_size)
    return frames[:, -config.output_length:]


def run_train() -> None:
    unknown = sorted(set(_VARIANTS.value) - set(VARIANTS))
    if unknown:
        raise ConfigError(f"--variants: unknown {unknown}; expected a subset of {VARIANTS}")
    results_dir = os.path.join(_OUTPUT_DIR.value, "results")
    os.makedirs(results_dir, exist_ok=True)
    test = fidelity.load_split(_DATA_DIR.value, "mnist", "test", 20)
    test = test[:_NUM_TEST.value] if _NUM_TEST.value else test
    train = None
    for variant in _VARIANTS.value:
        for seed in (int(value) for value in _SEEDS.value):
            path = os.path.join(results_dir, f"{variant}-seed{seed}.json")
            if os.path.exists(path):
                continue
            config = issue_config(seed, keras_adam=variant == "ours_keras_adam")
            if variant == "official":
                if train is None:
                    train = fidelity.load_split(_DATA_DIR.value, "mnist", "train", 20)
                state = os.path.join(_OUTPUT_DIR.value, f"official-seed{seed}.pt")
                result = train_official(config, train, test, state)
            else:
                workdir = os.path.join(_OUTPUT_DIR.value, f"{variant}-seed{seed}")
                train_ours(config, workdir)
                result = evaluate_ours(workdir, test, config.input_length)
            result.update(variant=variant, seed=seed, iterations=config.max_iterations,
                          deterministic=config.deterministic or variant == "official")
            files.write_json(path, result)
            print(f"{variant} seed {seed}: per-frame test MSE {result['mse']:.2f}", flush=True)
    results = [json.load(open(path)) for path in sorted(glob.glob(f"{results_dir}/*.json"))]
    summary = fidelity.summarise_seeds(results)
    files.write_json(os.path.join(_OUTPUT_DIR.value, "summary.json"), summary)
    print("\n".join(fidelity.format_summary(summary, _MAX_ITERATIONS.value)))


def main() -> None:
    run_updates() if _MODE.value == "updates" else run_train()


if __name__ == "__main__":
    flag_parsing.run_tool(main, errors=(ValueError, OSError, ImportError,
                                         subprocess.CalledProcessError))
