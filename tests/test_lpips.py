"""LPIPS in Keras against a PyTorch transcription of lpips.LPIPS(net="alex", version="0.1")."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from predrnn_tf.evaluation import lpips

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LPIPS_SLICES = {0: "slice1.0", 3: "slice2.3", 6: "slice3.6", 8: "slice4.8", 10: "slice5.10"}


def _torch_alexnet_features(torch):
    """torchvision.models.AlexNet().features, written out (torchvision may not import)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


def _torch_lpips(torch, features, heads, images_a, images_b):
    """lpips.LPIPS.forward (v0.1, spatial=False) for [N, 3, H, W] inputs in [-1, 1]."""
    shift = torch.tensor([-.030, -.088, -.188])[None, :, None, None]
    scale = torch.tensor([.458, .448, .450])[None, :, None, None]
    slices = [(0, 2), (2, 5), (5, 8), (8, 10), (10, 12)]

    def taps(images):
        values, outputs = (images - shift) / scale, []
        for start, stop in slices:
            for index in range(start, stop):
                values = features[index](values)
            outputs.append(values)
        return outputs

    def normalize(values, eps=1e-10):
        return values / (torch.sqrt(torch.sum(values ** 2, dim=1, keepdim=True)) + eps)

    total = 0
    for feature_a, feature_b, head in zip(taps(images_a), taps(images_b), heads, strict=True):
        difference = (normalize(feature_a) - normalize(feature_b)) ** 2
        total = total + torch.nn.functional.conv2d(difference, head).mean([2, 3], keepdim=True)
    return total.reshape(-1)


@pytest.fixture(scope="module")
def torch_reference():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    features = _torch_alexnet_features(torch).eval()
    channels = [64, 192, 384, 256, 256]
    heads = [torch.rand(1, channel, 1, 1) * 0.1 for channel in channels]
    alexnet_state = {key: value.numpy() for key, value in features.state_dict().items()}
    alexnet_state = {f"features.{key}": value for key, value in alexnet_state.items()}
    linear_state = {f"lin{index}.model.1.weight": head.numpy() for index, head in enumerate(heads)}
    return torch, features, heads, alexnet_state, linear_state


def _images(seed, shape=(3, 64, 48, 1)):
    rng = np.random.default_rng(seed)
    truth = rng.random(shape).astype(np.float32)
    prediction = np.clip(truth + 0.2 * rng.standard_normal(shape), 0, 1).astype(np.float32)
    return truth, prediction


def _to_torch(torch, images, rescale):
    images = np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images
    images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    return images * 2 - 1 if rescale else images


@pytest.mark.parametrize("rescale_inputs", [True, False])
def test_matches_torch_reference(torch_reference, rescale_inputs):
    torch, features, heads, alexnet_state, linear_state = torch_reference
    truth, prediction = _images(1)
    model = lpips.LPIPS(rescale_inputs=rescale_inputs)
    model.set_torch_weights(lpips.weights_from_state_dicts(alexnet_state, linear_state))
    ours = np.asarray(model((truth, prediction)))
    with torch.no_grad():
        expected = _torch_lpips(torch, features, heads, _to_torch(torch, truth, rescale_inputs),
                                _to_torch(torch, prediction, rescale_inputs)).numpy()
    assert ours.shape == (3,)
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=1e-5)
    assert np.all(expected > 1e-3)  # a real distance, not a degenerate zero
    same = np.asarray(model((truth, truth)))
    np.testing.assert_allclose(same, 0.0, atol=1e-7)


def test_matches_lpips_package_when_importable(torch_reference, tmp_path):
    torch, *_ = torch_reference
    try:
        import lpips as lpips_package
    except Exception as error:  # lpips missing, or its torchvision import broken
        pytest.skip(f"lpips package not importable: {error}")
    reference = lpips_package.LPIPS(net="alex", pnet_rand=True, verbose=False)
    state = {key: value.numpy() for key, value in reference.state_dict().items()}
    alexnet_state = {f"features.{layer}.{kind}": state[f"net.{name}.{kind}"]
                     for layer, name in LPIPS_SLICES.items() for kind in ("weight", "bias")}
    path = str(tmp_path / "weights.npz")
    lpips.save_weights_file(lpips.weights_from_state_dicts(alexnet_state, state), path)
    model = lpips.load_lpips(path)
    truth, prediction = _images(2, (2, 64, 64, 3))
    with torch.no_grad():
        expected = reference(_to_torch(torch, truth, True), _to_torch(torch, prediction, True))
    np.testing.assert_allclose(np.asarray(model((truth, prediction))),
                               expected.numpy().reshape(-1), atol=1e-5)


def test_converter_writes_file_that_loads(torch_reference, tmp_path):
    torch, features, heads, alexnet_state, linear_state = torch_reference
    alexnet_path = tmp_path / "alexnet.pth"
    heads_path = tmp_path / "alex.pth"
    torch.save({f"features.{key}": value for key, value in features.state_dict().items()},
               alexnet_path)
    torch.save({f"lin{index}.model.1.weight": head for index, head in enumerate(heads)},
               heads_path)
    output = tmp_path / "out" / "lpips.npz"
    command = [sys.executable, os.path.join(REPO, "tools", "convert_lpips_weights.py"),
               f"--alexnet_weights={alexnet_path}", f"--lpips_weights={heads_path}",
               f"--output={output}"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    loaded = lpips.read_weights_file(str(output))
    for name, value in lpips.weights_from_state_dicts(alexnet_state, linear_state).items():
        np.testing.assert_array_equal(loaded[name], value)
    assert not [name for name in os.listdir(output.parent) if "tmp" in name]


def test_converter_missing_file_is_one_line_error(tmp_path):
    command = [sys.executable, os.path.join(REPO, "tools", "convert_lpips_weights.py"),
               f"--alexnet_weights={tmp_path / 'nope.pth'}",
               f"--lpips_weights={tmp_path / 'nope2.pth'}", f"--output={tmp_path / 'o.npz'}"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 1
    assert "nope2.pth does not exist" in completed.stderr or "nope.pth" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "o.npz").exists()


def test_shipped_linear_heads_convert_when_lpips_files_present(tmp_path):
    torch = pytest.importorskip("torch")
    spec = importlib.util.find_spec("lpips")
    if spec is None:
        pytest.skip("lpips package files not installed")
    heads_path = os.path.join(spec.submodule_search_locations[0], "weights", "v0.1", "alex.pth")
    heads = torch.load(heads_path, map_location="cpu", weights_only=True)
    alexnet_state = {name: np.zeros(shape, np.float32)
                     for name, shape in lpips.expected_weight_shapes().items()
                     if name.startswith("features.")}
    weights = lpips.weights_from_state_dicts(
        alexnet_state, {key: value.numpy() for key, value in heads.items()})
    assert weights["lin4.weight"].shape == (1, 256, 1, 1)
    assert weights["lin0.weight"].min() >= 0  # the published heads are non-negative


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(lpips.LPIPSWeightsError, match="convert_lpips_weights.py"):
        lpips.read_weights_file(str(tmp_path / "missing.npz"))
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"features.0.weight": np.zeros((1, 1), np.float32)})
    with pytest.raises(lpips.LPIPSWeightsError, match="bad.npz"):
        lpips.read_weights_file(str(bad))
    model = lpips.LPIPS()
    with pytest.raises(ValueError, match="at least 31x31"):
        model((np.zeros((1, 16, 16, 1)), np.zeros((1, 16, 16, 1))))


def test_get_config_round_trips():
    model = lpips.LPIPS(rescale_inputs=False, name="metric")
    clone = lpips.LPIPS.from_config(model.get_config())
    assert clone.rescale_inputs is False and clone.name == "metric"
