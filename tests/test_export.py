import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf import checkpoints, units
from predrnn_tf.cli import export
from predrnn_tf.config import Config
from predrnn_tf.data import schema, synthetic_radar
from predrnn_tf.errors import ConfigError, ExportError
from predrnn_tf.models.builder import build_model
from predrnn_tf.serving import exporter, graph_ops, local_server, publishing, signatures, warmup
from predrnn_tf.workdir import WorkDir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = Config(num_hidden=(4, 4), filter_size=3, patch_size=4, img_width=16, input_length=3,
              total_length=6)
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
# The saved_model_cli of this interpreter's TensorFlow (no activated venv needed on PATH).
SAVED_MODEL_CLI = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny radar work directory as training leaves it: config.json, checkpoints/ckpt-7.

    Built without running the train step (slow to trace); the checkpoint holds the model
    and the step variable as train_lib's does, and the synthetic radar metadata sits in
    WORKDIR/data.
    """
    path = str(tmp_path_factory.mktemp("export") / "tiny_radar")
    synthetic_radar.ensure_synthetic_dataset(os.path.join(path, "data"), 16, 6, num_train=4,
                                             num_test=4)
    model = build_model(TINY)
    step = tf.Variable(7, dtype=tf.int64, trainable=False, name="step")
    checkpoints.make_manager(tf.train.Checkpoint(model=model, step=step), path).save(
        checkpoint_number=9)  # the version must come from the step variable, not the name
    work = WorkDir(path)
    work.save_config(TINY)
    metadata = schema.read_metadata(os.path.join(path, "data"), TINY.dataset_name)
    work.write_data_card(metadata, TINY.dataset_name)  # as training writes it
    return path


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("exports"))


@pytest.fixture(scope="module")
def exported(workdir, export_dir):
    return export.export_workdir(workdir, export_dir)


@pytest.fixture(scope="module")
def keras_model(workdir):
    model, _ = WorkDir(workdir).restore_model()
    return model


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported["path"])


def random_frames(batch, size, seed=0):
    return np.random.default_rng(seed).random((batch, 3, size, size, 1), dtype=np.float32)


def test_layout_version_and_warmup(exported, export_dir, workdir):
    assert exported["path"] == os.path.join(export_dir, "tiny_radar", "7")  # step 7, folder name
    assert sorted(os.listdir(os.path.join(export_dir, "tiny_radar"))) == ["7"]  # no temp left
    extra = os.path.join(exported["path"], exporter.ASSETS_EXTRA)
    assert os.path.exists(os.path.join(exported["path"], "saved_model.pb"))
    info = json.load(open(os.path.join(extra, exporter.EXPORT_INFO_FILENAME)))
    assert info["precision"] == "float32" and info["config"]["input_length"] == 3
    assert exported["relative_l2_vs_float32"] < 1e-5
    # The export carries what its pixels mean, independent of the work directory.
    assert info["data_card"] == WorkDir(workdir).data_card
    assert info["data_card"]["unit"] == "dBZ"

    prediction_log_pb2 = pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")

    records = list(tf.data.TFRecordDataset(os.path.join(extra, exporter.WARMUP_FILENAME)))
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in records]
    requests = {log.predict_log.request.model_spec.signature_name: log.predict_log.request
                for log in logs}
    assert sorted(requests) == ["predict_dbz", "serving_default"]
    assert sorted(exported["signatures"]) == ["predict_dbz", "serving_default"]  # no ensemble
    request = requests["serving_default"]
    assert request.model_spec.name == "tiny_radar"
    frames = tf.make_ndarray(request.inputs["frames"])
    assert frames.shape == (1, 3, 16, 16, 1) and frames.dtype == np.float32


def test_signatures_are_float32_with_dynamic_batch_and_size(loaded):
    for name, key in (("serving_default", "frames"), ("predict_dbz", "frames_dbz")):
        function = loaded.signatures[name]
        spec = function.structured_input_signature[1][key]
        assert spec.dtype == tf.float32
        assert spec.shape.as_list() == [None, 3, None, None, 1]
        (output,) = function.structured_outputs.values()
        assert output.dtype == tf.float32


@pytest.mark.parametrize("batch,size", [(1, 16), (3, 24)])
def test_served_forecast_matches_keras(loaded, keras_model, batch, size):
    frames = random_frames(batch, size)
    served = loaded.signatures["serving_default"](frames=tf.constant(frames))["predictions"]
    expected = np.clip(keras_model.forecast(tf.constant(frames)).numpy(), 0.0, 1.0)
    assert served.shape == (batch, 3, size, size, 1)
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-5)
    assert served.numpy().std() > 0  # a real forecast, not a constant


def test_wrong_frame_count_or_size_is_a_clear_error(loaded):
    serve = loaded.signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="multiples of patch_size=4"):
        serve(frames=tf.constant(random_frames(1, 18)))
    four_frames = np.concatenate([random_frames(1, 16)] * 2, axis=1)[:, :4]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"frames must be \[batch, 3, "):
        serve(frames=tf.constant(four_frames))


def test_predict_dbz_round_trip(loaded):
    frames = random_frames(2, 16, seed=1)
    metadata = {"value_mapping": units.hko7_mapping()}
    dbz = units.pixels_to_units(frames, metadata).astype(np.float32)
    served_dbz = loaded.signatures["predict_dbz"](frames_dbz=tf.constant(dbz))["predictions_dbz"]
    served = loaded.signatures["serving_default"](frames=tf.constant(frames))["predictions"]
    np.testing.assert_allclose(served_dbz.numpy(), units.pixels_to_units(served.numpy(), metadata),
                               atol=1e-3)
    assert served_dbz.numpy().min() >= units.HKO7_OFFSET - 1e-4


def test_no_dbz_mapping_means_no_dbz_signature(keras_model):
    assert units.dbz_mapping({"value_mapping": None}) is None
    assert units.dbz_mapping({"value_mapping": {"units": "mm/h", "scale": 1,
                                                     "offset": 0}}) is None
    module = signatures.ForecastModule(keras_model, TINY, value_mapping=None)
    assert sorted(module.signatures()) == ["serving_default"]


def test_existing_version_is_refused_and_left_intact(workdir, export_dir, exported):
    saved_model = os.path.join(exported["path"], "saved_model.pb")
    before = os.stat(saved_model).st_mtime_ns
    with pytest.raises(exporter.ExportError, match="already exists"):
        export.export_workdir(workdir, export_dir)
    result = subprocess.run([sys.executable, "-m", "predrnn_tf.export", f"--workdir={workdir}",
                             f"--export_dir={export_dir}"], cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: ") and "already exists" in result.stderr
    assert os.stat(saved_model).st_mtime_ns == before


def test_failed_export_leaves_no_folder(tmp_path):
    final = str(tmp_path / "model" / "7")
    with pytest.raises(RuntimeError):
        with publishing.staged_folder(final) as temporary:
            os.makedirs(os.path.join(temporary, "variables"))
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path / "model") == []


def test_mixed_bfloat16_export_keeps_float32_io(workdir, export_dir):
    summary = export.export_workdir(workdir, export_dir, precision="mixed_bfloat16",
                                        version=5, warmup=False)
    assert summary["precision"] == "mixed_bfloat16"
    # bfloat16 compute really happened (not zero) and stays close to float32.
    assert 1e-5 < summary["relative_l2_vs_float32"] < 0.05
    loaded = tf.saved_model.load(summary["path"])
    function = loaded.signatures["serving_default"]
    assert function.structured_input_signature[1]["frames"].dtype == tf.float32
    outputs = function(frames=tf.constant(random_frames(2, 20)))["predictions"]
    assert outputs.dtype == tf.float32 and outputs.shape == (2, 3, 20, 20, 1)
    ops = graph_ops.graph_ops(summary["path"])
    assert "Cast" in ops and not graph_ops.unregistered_ops(ops)
    # The graph-mode loader (as TF Serving's) restores the variables the graph reads.
    frames = random_frames(1, 16)
    graph_outputs = run_in_session(summary["path"], frames)
    eager_outputs = function(frames=tf.constant(frames))["predictions"].numpy()
    np.testing.assert_allclose(graph_outputs, eager_outputs, atol=1e-6)


def run_in_session(path, frames):
    """Runs serving_default through the TF1 SavedModel loader (restore op + session)."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        signature = meta_graph.signature_def["serving_default"]
        return session.run(signature.outputs["predictions"].name,
                           {signature.inputs["frames"].name: frames})


def test_mixed_float16_module_keeps_float32_io(workdir):
    model, config = WorkDir(workdir).restore_model(precision="mixed_float16")
    module = signatures.ForecastModule(model, config)
    function = module.signatures()["serving_default"]
    assert model.compute_dtype == "float16"
    assert function.structured_outputs["predictions"].dtype == tf.float32


def test_every_op_is_registered_in_plain_tensorflow(exported):
    ops = sorted(graph_ops.graph_ops(exported["path"]))
    assert {"Conv2D", "Sigmoid", "Tanh"} <= set(ops)
    assert not any(op.startswith("__inference") for op in ops)  # function calls excluded
    assert graph_ops.unregistered_ops(["Conv2D", "PredRNNCustomOp"]) == ["PredRNNCustomOp"]
    # A fresh interpreter with only TensorFlow imported knows every op.
    script = ("import json, sys; import tensorflow; "
              "from tensorflow.python.framework import op_def_registry; "
              "print(json.dumps([op for op in json.loads(sys.argv[1]) "
              "if op_def_registry.get(op) is None]))")
    result = subprocess.run([sys.executable, "-c", script, json.dumps(ops)], env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_saved_model_cli_show_and_run_reproduce_keras(exported, keras_model, tmp_path):
    path = exported["path"]
    show = subprocess.run([*SAVED_MODEL_CLI, "show", "--dir", path, "--all"], env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert show.returncode == 0, show.stderr
    for text in ("signature_def['serving_default']", "signature_def['predict_dbz']",
                 "inputs['frames']", "outputs['predictions']", "shape: (-1, 3, -1, -1, 1)",
                 "dtype: DT_FLOAT"):
        assert text in show.stdout
    frames = random_frames(2, 16, seed=3)
    np.save(tmp_path / "frames.npy", frames)
    run = subprocess.run([*SAVED_MODEL_CLI, "run", "--dir", path, "--tag_set", "serve",
                          "--signature_def", "serving_default",
                          "--inputs", f"frames={tmp_path / 'frames.npy'}",
                          "--outdir", str(tmp_path / "out")], env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    predictions = np.load(tmp_path / "out" / "predictions.npy")
    expected = np.clip(keras_model.forecast(tf.constant(frames)).numpy(), 0.0, 1.0)
    np.testing.assert_allclose(predictions, expected, atol=1e-5)


def test_hand_built_warmup_record_matches_serving_api(monkeypatch):
    prediction_log_pb2 = pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")

    inputs = {"frames": np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3, 1),
              "extra": np.ones((2,), np.float32)}
    with_api = warmup.encode_prediction_log("radar", "serving_default", inputs)
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)  # import now fails
    by_hand = warmup.encode_prediction_log("radar", "serving_default", inputs)
    parsed = prediction_log_pb2.PredictionLog.FromString(by_hand)
    assert parsed == prediction_log_pb2.PredictionLog.FromString(with_api)
    np.testing.assert_array_equal(
        tf.make_ndarray(parsed.predict_log.request.inputs["frames"]), inputs["frames"])
    assert parsed.predict_log.request.model_spec.signature_name == "serving_default"


def test_relative_l2_and_model_names():
    assert exporter.relative_l2(np.array([3.0, 4.0]), np.array([3.0, 4.0])) == 0.0
    assert exporter.relative_l2(np.array([3.0, 5.0]), np.array([3.0, 4.0])) == pytest.approx(0.2)
    assert publishing.default_model_name("/runs/my run/", TINY) == "my_run"
    with pytest.raises(exporter.ExportError, match="model_name"):
        publishing.check_model_name("a/b")


@pytest.mark.parametrize("name", ["_under", "a..b", "-dash", ".hidden", "ä", "x" * 101, ""])
def test_export_refuses_the_names_the_server_refuses(name, tmp_path):
    with pytest.raises(exporter.ExportError, match="start with a letter or digit"):
        publishing.version_path(str(tmp_path), name, 1)
    with pytest.raises(ConfigError, match="start with a letter or digit"):
        local_server.load_newest_version(str(tmp_path), name)


def test_the_default_name_of_any_workdir_is_servable():
    for workdir, expected in [("/runs/気象レーダー/", TINY.model_name), ("/runs/_a..b_/", "a.b"),
                              ("/runs/räin run/", "r_in_run"), ("/runs/____", TINY.model_name)]:
        name = publishing.default_model_name(workdir, TINY)
        assert name == expected and publishing.model_name_problem(name) is None


def test_layer_norm_model_is_exported_at_its_trained_size():
    config = TINY.replace(layer_norm=True)  # layer norm weights are (H, W, C): size-bound
    module = signatures.ForecastModule(build_model(config), config)
    assert module.serve.input_signature[0].shape.as_list() == [None, 3, 16, 16, 1]


def test_a_file_size_limit_is_one_line_and_publishes_nothing(workdir, tmp_path):
    import resource

    def limit_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))  # ulimit -f 2 (KiB)

    result = subprocess.run([sys.executable, "-m", "predrnn_tf.export", f"--workdir={workdir}",
                             f"--export_dir={tmp_path}", "--model_name=m", "--nocompare",
                             "--nowarmup"], cwd=REPO, env=ENV, capture_output=True, text=True,
                            timeout=300, preexec_fn=limit_files)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [result.stderr.strip().splitlines()[-1]], result.stderr[-2000:]
    assert errors[0].startswith(f"error: writing --export_dir={tmp_path} failed: File too large")
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path / "m") == []  # no version, no staging folder


def test_write_failures_become_one_output_line_and_others_pass(tmp_path):
    import errno

    from predrnn_tf.cli import flag_parsing
    from predrnn_tf.errors import OutputError

    for failure in (OSError(errno.ENOSPC, "No space left on device", "/elsewhere/x"),
                    OSError(errno.EROFS, "Read-only file system", str(tmp_path / "x")),
                    PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x")),
                    tf.errors.ResourceExhaustedError(None, None, "x; No space left on device")):
        with pytest.raises(OutputError, match=f"writing --export_dir={tmp_path} failed"):
            with flag_parsing.writing_to("--export_dir", str(tmp_path)):
                raise failure
    unreadable_input = PermissionError(errno.EACCES, "Permission denied", "/runs/ckpt")
    with pytest.raises(PermissionError):
        with flag_parsing.writing_to("--export_dir", str(tmp_path)):
            raise unreadable_input


def test_staging_folders_of_killed_exports_are_removed_at_export(workdir, tmp_path):
    killed = tmp_path / "m" / ".3.tmp-999999999"  # no such process
    os.makedirs(killed / "variables")
    export.export_workdir(workdir, str(tmp_path), model_name="m", version=4, compare=False,
                          warmup=False)
    assert sorted(os.listdir(tmp_path / "m")) == ["4"]


def test_ensemble_size_adds_the_ensemble_signature_of_an_advection_model(workdir, tmp_path):
    with pytest.raises(ExportError, match="--ensemble_size=2 needs"):  # no advection prior
        export.export_workdir(workdir, str(tmp_path), ensemble_size=2, compare=False)
    config = Config(num_hidden=(4,), filter_size=3, patch_size=4, img_width=16,
                    input_length=3, total_length=5, residual_frames=True, advection_prior=True,
                    dataset_name="rain")
    path = str(tmp_path / "rain")
    checkpoints.make_manager(tf.train.Checkpoint(model=build_model(config)), path).save(1)
    work = WorkDir(path)
    work.save_config(config)
    work.write_data_card({"value_mapping": units.rain_rate_mapping(),
                          "grid": {"pixel_km": 2.0, "interval_minutes": 5.0}}, "rain")
    summary = export.export_workdir(path, str(tmp_path / "exports"), ensemble_size=2,
                                    compare=False, warmup=False)
    assert summary["signatures"] == ["predict_ensemble_mm_per_hour", "predict_mm_per_hour",
                                     "serving_default"]
    assert summary["ensemble_size"] == 2
    served = tf.saved_model.load(summary["path"]).signatures["predict_ensemble_mm_per_hour"](
        frames_mm_per_hour=tf.fill([1, 3, 16, 16, 1], 2.0))
    assert served["members_mm_per_hour"].shape == (1, 2, 2, 16, 16, 1)
    assert served["exceedance_probabilities"].shape == (1, 2, 16, 16, 2)
