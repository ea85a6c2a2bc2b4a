"""Layer capture equals a manual forward pass; early stop; fake ReLU; errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from metamers.models import Classifier
from metamers.models.architectures import CifarResNet, LeNet5
from metamers.models.layers import LayerError, LayerReader, fake_relu


@pytest.fixture
def lenet() -> Classifier:
    torch.manual_seed(0)
    return Classifier(LeNet5(), mean=(0.1,), std=(0.3,), input_shape=(1, 28, 28), num_classes=10, name="lenet")


def _manual_lenet(model: Classifier, x: torch.Tensor) -> dict[str, torch.Tensor]:
    n = model.net
    z = (x - 0.1) / 0.3
    out = {"conv1": F.conv2d(z, n.conv1.weight, n.conv1.bias, padding=1)}
    out["relu1"] = out["conv1"].clamp(min=0)
    out["maxpool1"] = F.max_pool2d(out["relu1"], 2)
    out["conv2"] = F.conv2d(out["maxpool1"], n.conv2.weight, n.conv2.bias, padding=1)
    out["relu2"] = out["conv2"].clamp(min=0)
    out["maxpool2"] = F.max_pool2d(out["relu2"], 2)
    out["linear1"] = out["maxpool2"].reshape(len(x), -1) @ n.linear1.weight.T + n.linear1.bias
    out["relu3"] = out["linear1"].clamp(min=0)
    out["linear2"] = out["relu3"] @ n.linear2.weight.T + n.linear2.bias
    return out


def test_layers_equal_a_manual_forward(lenet):
    x = torch.rand(3, 1, 28, 28)
    expected = _manual_lenet(lenet, x)
    names = ["conv1", "relu1", "maxpool1", "conv2", "relu2", "maxpool2", "linear1", "relu3", "linear2"]
    got = LayerReader(lenet, names)(x)
    assert list(got) == names
    for name in names:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got["linear2"], lenet(x))


def test_forward_stops_after_the_deepest_requested_layer(lenet):
    calls = []
    lenet.net.conv2.register_forward_hook(lambda *a: calls.append("conv2"))
    LayerReader(lenet, ["relu1"])(torch.rand(1, 1, 28, 28))
    assert calls == []
    LayerReader(lenet, ["relu1"], stop_early=False)(torch.rand(1, 1, 28, 28))
    assert calls == ["conv2"]


def test_fake_relu_passes_gradient_through_negative_inputs(lenet):
    x = torch.rand(2, 1, 28, 28, requires_grad=True)
    out = LayerReader(lenet, ["relu3"], fake_relu=["relu3"])(x)["relu3"]
    torch.testing.assert_close(out, _manual_lenet(lenet, x)["relu3"])
    (grad_fake,) = torch.autograd.grad(out.sum(), x)
    pre = LayerReader(lenet, ["linear1"])(x)["linear1"]
    assert (pre < 0).any()  # the ReLU does cut something off
    (grad_pre,) = torch.autograd.grad(pre.sum(), x)
    torch.testing.assert_close(grad_fake, grad_pre)
    real = LayerReader(lenet, ["relu3"])(x)["relu3"]
    (grad_real,) = torch.autograd.grad(real.sum(), x)
    assert not torch.allclose(grad_real, grad_pre)


def test_fake_relu_function():
    x = torch.tensor([-1.0, 0.5], requires_grad=True)
    y = fake_relu(x)
    assert y.tolist() == [0.0, 0.5]
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_fake_relu_of_a_computed_relu_takes_its_value_and_passes_the_gradient_to_the_input():
    """Given the module's output ``relu(x)``, the value is that tensor's and the gradient reaches
    ``x`` unchanged, none of it through the ReLU that computed the output."""
    x = torch.tensor([-1.0, 0.5, -2.0], requires_grad=True)
    out = torch.relu(x * 3)
    y = fake_relu(x * 3, out)
    assert y.tolist() == [0.0, 1.5, 0.0] and y.data_ptr() == out.data_ptr()  # no second ReLU pass
    (torch.tensor([1.0, 2.0, 3.0]) * y).sum().backward()
    assert x.grad.tolist() == [3.0, 6.0, 9.0]  # 3 * the upstream gradient, the negatives included


def test_unknown_layer_lists_the_valid_ones(lenet):
    with pytest.raises(LayerError, match=r"has no layer\(s\) \['relu9'\]; valid layers: conv1, relu1, maxpool1"):
        LayerReader(lenet, ["relu9"])


def test_fake_relu_needs_a_relu_layer(lenet):
    with pytest.raises(LayerError, match="but 'conv2' of model 'lenet' is Conv2d; ReLU layers: relu1, relu2, relu3"):
        LayerReader(lenet, ["conv2"], fake_relu=["conv2"])


def test_graph_nodes_are_read_with_torch_fx():
    torch.manual_seed(0)
    model = Classifier(CifarResNet(20), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), input_shape=(3, 32, 32),
                       num_classes=10, name="resnet20")
    x = torch.rand(2, 3, 32, 32)
    got = LayerReader(model, ["layer1.0.add"])(x)["layer1.0.add"]
    n = model.net
    stem = n.relu(n.bn1(n.conv1((x - 0.5) / 0.25)))
    block = n.layer1[0]
    expected = block.bn2(block.conv2(block.relu1(block.bn1(block.conv1(stem))))) + stem
    torch.testing.assert_close(got, expected)


def test_inplace_activations_do_not_overwrite_captured_layers():
    import torchvision

    net = torchvision.models.resnet18(weights=None)
    assert net.relu.inplace
    model = Classifier(net, mean=(0.5,) * 3, std=(0.25,) * 3, input_shape=(3, 64, 64), num_classes=1000)
    assert not net.relu.inplace
    bn1 = LayerReader(model, ["bn1", "layer1"])(torch.rand(2, 3, 64, 64))["bn1"]
    assert (bn1 < 0).any()


@pytest.fixture(scope="module")
def resnet18():
    import torchvision

    torch.manual_seed(0)
    return Classifier(torchvision.models.resnet18(weights=None), mean=(0.5,) * 3, std=(0.25,) * 3,
                      input_shape=(3, 64, 64), num_classes=1000, name="resnet18")


def test_residual_stages_end_in_their_last_relu(resnet18):
    from metamers.models.layers import ends_in_relu, uses_fake_relu

    assert [ends_in_relu(resnet18, name) for name in ("layer1", "layer4", "layer1.1", "layer2.0")] == [True] * 4
    assert [ends_in_relu(resnet18, name) for name in ("maxpool", "layer1.0.conv1", "avgpool", "fc", "relu")] == \
        [False] * 5  # relu is a ReLU module itself
    assert all(uses_fake_relu(resnet18, name, True, None) for name in ("relu", "layer1", "layer2", "layer3", "layer4"))
    assert uses_fake_relu(resnet18, "layer3", True, None) and not uses_fake_relu(resnet18, "avgpool", True, None)
    assert not uses_fake_relu(resnet18, "layer3", False, None)


def test_the_straight_through_relu_at_a_residual_stage_replaces_its_last_relu(resnet18):
    """layer1_fake_relu of the published ResNets: the stage's value is unchanged, and its
    gradient is that of the last block's residual sum (computed here by hand), while the real
    ReLU's gradient differs."""
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    fake = LayerReader(resnet18, ["layer1"], fake_relu=["layer1"])(x)["layer1"]
    real = LayerReader(resnet18, ["layer1"])(x)["layer1"]
    torch.testing.assert_close(fake, real)
    net = resnet18.net
    h = net.maxpool(net.relu(net.bn1(net.conv1(resnet18.normalize(x)))))
    h = net.layer1[0](h)
    block = net.layer1[1]
    pre = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(h))))) + h  # the residual sum before its ReLU
    torch.testing.assert_close(pre.clamp(min=0), real)
    assert (pre < 0).any()
    (g_fake,) = torch.autograd.grad(fake.sum(), x)
    (g_pre,) = torch.autograd.grad(pre.sum(), x)
    (g_real,) = torch.autograd.grad(real.sum(), x)
    torch.testing.assert_close(g_fake, g_pre)
    assert not torch.allclose(g_real, g_pre)


def test_fake_relu_needs_a_module_that_ends_in_a_relu(resnet18):
    with pytest.raises(LayerError, match="fake_relu needs a ReLU module or a module that ends in one, but "
                                         "'avgpool' of model 'resnet18' is AdaptiveAvgPool2d"):
        LayerReader(resnet18, ["avgpool"], fake_relu=["avgpool"])


def _nested() -> Classifier:
    # nested containers; an identity (a leaf) before the head
    inner = torch.nn.Sequential()
    inner.add_module("conv", torch.nn.Conv2d(1, 2, 3, padding=1))
    inner.add_module("relu", torch.nn.ReLU())
    block = torch.nn.Sequential()
    block.add_module("inner", inner)
    block.add_module("relu", torch.nn.ReLU())
    net = torch.nn.Sequential()
    net.add_module("conv", torch.nn.Conv2d(1, 1, 3, padding=1))
    net.add_module("block", block)
    net.add_module("head", torch.nn.Identity())
    net.add_module("flatten", torch.nn.Flatten())
    net.add_module("fc", torch.nn.Linear(2 * 4 * 4, 3))
    return Classifier(net, mean=(0.0,), std=(1.0,), input_shape=(1, 4, 4), num_classes=3, name="nested")


def test_layer_depth_counts_leaves_and_places_a_container_at_its_last_leaf():
    from metamers.models.layers import layer_depth

    model = _nested()
    # 7 leaves: conv, block.inner.conv, block.inner.relu, block.relu, head, flatten, fc
    expected = {"conv": 1 / 7, "block.inner.conv": 2 / 7, "block.inner.relu": 3 / 7, "block.inner": 3 / 7,
                "block.relu": 4 / 7, "block": 4 / 7, "head": 5 / 7, "flatten": 6 / 7, "fc": 1.0}
    assert {name: layer_depth(model, name) for name in model.layer_names()} == pytest.approx(expected)
    # a container's depth is where its output is made: the same as its last leaf's output
    reader = LayerReader(model, ["block", "block.relu"])
    out = reader(torch.rand(2, 1, 4, 4))
    assert torch.equal(out["block"], out["block.relu"])
    with pytest.raises(LayerError, match="valid layers: conv, block, block.inner"):
        layer_depth(model, "nope")


def test_resnet_stage_depths_are_those_of_their_last_relu():
    from metamers.models.layers import layer_depth

    model = Classifier(CifarResNet(depth=20), mean=(0.5,) * 3, std=(0.25,) * 3, input_shape=(3, 32, 32),
                       num_classes=10, name="resnet20")
    for stage in ("layer1", "layer2", "layer3"):
        assert layer_depth(model, stage) == layer_depth(model, f"{stage}.2.relu2") == layer_depth(model, f"{stage}.2")
    assert layer_depth(model, "layer1") < layer_depth(model, "layer2.0.conv1") < layer_depth(model, "layer2")
    assert layer_depth(model, "linear") == 1.0


# --------------------------------------------------------------------------- the normalised input

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture
def rgb() -> Classifier:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 8 * 8, 5))
    return Classifier(net, mean=IMAGENET_MEAN, std=IMAGENET_STD, input_shape=(3, 8, 8), num_classes=5, name="rgb")


def _normalised(x: torch.Tensor) -> torch.Tensor:
    return (x - torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)


def test_input_after_preproc_is_the_normalised_input_the_network_receives(rgb):
    from metamers.models.layers import INPUT_LAYER, layer_depth

    x = torch.rand(3, 3, 8, 8)
    assert torch.equal(LayerReader(rgb, [INPUT_LAYER])(x)[INPUT_LAYER], _normalised(x))  # exactly
    got = LayerReader(rgb, ["0", INPUT_LAYER])(x)
    assert list(got) == ["0", INPUT_LAYER] and torch.equal(got[INPUT_LAYER], _normalised(x))
    torch.testing.assert_close(got["0"], rgb.net[0](_normalised(x)))  # what the first module is given
    calls = []
    rgb.net[0].register_forward_hook(lambda *a: calls.append("0"))
    LayerReader(rgb, [INPUT_LAYER])(x)
    assert calls == []  # read alone, no module of the network runs
    assert layer_depth(rgb, INPUT_LAYER) == 0.0
    with pytest.raises(LayerError, match=f"but '{INPUT_LAYER}' of model 'rgb' is its normalised input"):
        LayerReader(rgb, [INPUT_LAYER], fake_relu=[INPUT_LAYER])
    with pytest.raises(LayerError, match=f"valid layers: 0, 1, 2, 3; .*; and {INPUT_LAYER} \\(the normalised input\\)"):
        LayerReader(rgb, ["nope"])


def test_input_after_preproc_beside_graph_nodes():
    from metamers.models.layers import INPUT_LAYER

    torch.manual_seed(0)
    model = Classifier(CifarResNet(20), mean=(0.5, 0.4, 0.3), std=(0.25, 0.2, 0.3), input_shape=(3, 32, 32),
                       num_classes=10, name="resnet20")
    x = torch.rand(2, 3, 32, 32)
    got = LayerReader(model, [INPUT_LAYER, "layer1.0.add"])(x)
    assert list(got) == [INPUT_LAYER, "layer1.0.add"]
    assert torch.equal(got[INPUT_LAYER], model.normalize(x))
    torch.testing.assert_close(got[INPUT_LAYER], (x - torch.tensor([0.5, 0.4, 0.3]).reshape(1, 3, 1, 1))
                               / torch.tensor([0.25, 0.2, 0.3]).reshape(1, 3, 1, 1))
    torch.testing.assert_close(got["layer1.0.add"], LayerReader(model, ["layer1.0.add"])(x)["layer1.0.add"])


def test_a_metamer_at_input_after_preproc_is_matched_in_the_normalised_space(rgb):
    """The target is the normalised reference, the objective's gradient that of the relative L2
    distance between normalised images (by hand: it carries 1 / std per channel, unlike a match
    in pixels), and the metamer comes close to its reference in that space."""
    from metamers.models.layers import INPUT_LAYER, uses_fake_relu
    from metamers.synthesis import MetamerSynthesis
    from metamers.synthesis.losses import normalized_l2
    from metamers.synthesis.methods import resolve_method

    assert not uses_fake_relu(rgb, INPUT_LAYER, True, None)  # matched as it is
    ref = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    synth = MetamerSynthesis.single(rgb, INPUT_LAYER, ref, resolve_method("adam", {"iterations": 300}), seed=0)
    r = synth.reference  # (the 8-bit reference)
    assert torch.equal(synth.objective.activations[0], _normalised(r))
    x = synth.x.detach().clone().requires_grad_(True)
    synth.objective.losses(x).sum().backward()
    with torch.no_grad():
        d, zr = _normalised(x) - _normalised(r), _normalised(r)
        by_hand = d / (d.flatten(1).norm(dim=1) * zr.flatten(1).norm(dim=1)).reshape(-1, 1, 1, 1)
        by_hand = by_hand / torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
        in_pixels = (x - r) / ((x - r).flatten(1).norm(dim=1) * r.flatten(1).norm(dim=1)).reshape(-1, 1, 1, 1)
    torch.testing.assert_close(x.grad, by_hand, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(x.grad / x.grad.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1),
                              in_pixels / in_pixels.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1), atol=1e-3)
    start = normalized_l2(_normalised(synth.x), _normalised(r))
    out = synth.synthesize(progress=False)
    metamer = torch.from_numpy(out.metamer)
    final = normalized_l2(_normalised(metamer), _normalised(r))
    torch.testing.assert_close(torch.from_numpy(out.final_loss), final, rtol=1e-5, atol=1e-7)
    assert (final < start / 10).all(), (start, final)
