"""End to end as a new user: install into a fresh venv, then from a folder outside the clone
train the quickstart (tiny), predict from a .npy, a PNG folder and an export, export, serve
locally and get the same forecast back through the client.

Fast enough for the default suite (about 60 s on 2 CPU cores; each step's time is printed,
``pytest -s`` shows it): the venv reuses this interpreter's packages
(``--system-site-packages``) and installs a copy of the clone with ``pip install --no-deps
--no-build-isolation`` (no download, no editable link back into the repository); the model
is tiny (16 x 16 frames, 2 iterations).
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
IGNORED = shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", "build", "runs", "eval",
                                 "exports", "data", ".ruff_cache", ".pytest_cache")
TINY_TRAIN = ["--img_width=16", "--num_hidden=4,4", "--max_iterations=2", "--batch_size=2",
              "--num_test_batches=1", "--log_every=1", "--input_length=3", "--total_length=6"]


def run(command, cwd, env, timeout=300):
    """Runs ``command`` (asserting success) and prints how long it took."""
    start = time.monotonic()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    words = [os.path.basename(str(word)) for word in command[:3]]
    name = " ".join(words[1:3] if words[0].startswith("python") else words[:1])
    print(f"[install test] {name}: {time.monotonic() - start:.1f} s")
    assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
    return result


def skip_without_bdist_wheel(python) -> None:
    """Skips (with the remedy) when ``pip install --no-build-isolation`` cannot build a wheel.

    Without build isolation the build uses the venv's setuptools; before 70.1 its
    ``bdist_wheel`` comes from the ``wheel`` package, and without it pip stops with
    "invalid command 'bdist_wheel'". Isolation would download both: no network here.
    """
    probe = subprocess.run([str(python), "-c", "import setuptools\ntry:\n import "
                            "setuptools.command.bdist_wheel\nexcept ImportError:\n import wheel"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip("this interpreter cannot build wheels without network (setuptools < 70.1 "
                    "and no 'wheel' package): pip install 'setuptools>=70.1' (or wheel)")


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """(bin folder, clone copy, a user folder outside both, environment)."""
    root = tmp_path_factory.mktemp("install")
    start = time.monotonic()
    clone = root / "clone"
    shutil.copytree(REPO, clone, ignore=IGNORED)
    # --without-pip: the venv builds with this interpreter's pip and setuptools, not the old
    # setuptools ensurepip would bundle (65.x on Python 3.11, without bdist_wheel).
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(root / "venv")], check=True, timeout=120)
    bin_dir = root / "venv" / "bin"
    skip_without_bdist_wheel(bin_dir / "python")
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               PATH=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]))
    run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", str(clone)], cwd=root, env=env, timeout=300)
    print(f"[install test] copy, venv and pip install: {time.monotonic() - start:.1f} s")
    user = root / "user"
    user.mkdir()
    return bin_dir, clone, user, env


def test_install_train_predict_export_serve(venv):
    bin_dir, clone, user, env = venv
    python = str(bin_dir / "python")
    where = run([python, "-c", "import predrnn_tf; print(predrnn_tf.__file__)"], user, env)
    assert str(bin_dir.parent) in where.stdout, where.stdout  # the venv's copy, not the repo
    pretrained = run([python, "-m", "predrnn_tf.inference.pretrained_models", "radar_real"],
                     user, env).stdout.strip()
    assert pretrained.startswith(str(bin_dir.parent)), pretrained  # shipped as package data
    assert os.path.exists(os.path.join(pretrained, "checkpoints", "ckpt-600.index"))
    for command in ("predrnn-train", "predrnn-evaluate", "predrnn-export", "predrnn-predict",
                    "predrnn-serve"):
        assert (bin_dir / command).exists(), command

    run([str(bin_dir / "predrnn-train"), f"--flagfile={clone / 'configs/quickstart.flags'}",
         "--workdir=runs/quickstart", *TINY_TRAIN], user, env)
    run([python, str(clone / "tools/make_request.py"), "--workdir=runs/quickstart",
         "--output=request.json", "--npy=past.npy", "--truth_npy=future.npy"], user, env)
    past = np.load(user / "past.npy")
    assert past.shape == (1, 3, 16, 16, 1) and past.min() < 0  # dBZ, not [0, 1]

    run([str(bin_dir / "predrnn-predict"), "--workdir=runs/quickstart", "--input=past.npy",
         "--output_dir=forecast"], user, env)
    predicted = np.load(user / "forecast" / "predictions.npy")
    pngs = user / "past_frames"
    pngs.mkdir()
    for name in ("gt1.png", "gt2.png", "gt3.png"):
        shutil.copy(user / "forecast" / "frames" / "1" / name, pngs / name)
    run([str(bin_dir / "predrnn-predict"), "--workdir=runs/quickstart", "--input=past_frames",
         "--output_dir=forecast_png"], user, env)
    from_pngs = np.load(user / "forecast_png" / "predictions.npy")
    assert np.abs(from_pngs - predicted).max() < 5.0  # same past, quantised to uint8 PNGs

    run([str(bin_dir / "predrnn-export"), "--workdir=runs/quickstart", "--export_dir=exports",
         "--model_name=quickstart"], user, env)
    run([str(bin_dir / "predrnn-predict"), "--saved_model=exports/quickstart",
         "--input=past.npy", "--output_dir=forecast_export"], user, env)
    exported = np.load(user / "forecast_export" / "predictions.npy")
    np.testing.assert_allclose(exported, predicted, atol=1e-3)  # the export, same numbers
    server = subprocess.Popen([str(bin_dir / "predrnn-serve"), "--export_dir=exports",
                               "--model_name=quickstart", "--port=0"], cwd=user, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("serving quickstart"), line + server.stderr.read()
        address = line.split("http://")[1].split("/")[0]
        run([python, str(clone / "tools/serving_client.py"), f"--server={address}",
             "--model_name=quickstart", "--input=past.npy", "--output_dir=served"], user, env)
        status = run([python, "-c", "import json, urllib.request; print(json.dumps(json.load("
                      f"urllib.request.urlopen('http://{address}/v1/models/quickstart'))))"],
                     user, env)
        assert json.loads(status.stdout)["model_version_status"][0]["state"] == "AVAILABLE"
    finally:
        server.terminate()
        deadline = time.time() + 30
        while server.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        if server.poll() is None:
            server.kill()
        server.communicate()
    served = np.load(user / "served" / "predictions.npy")
    np.testing.assert_allclose(served, predicted, atol=1e-3)  # same units, same values
