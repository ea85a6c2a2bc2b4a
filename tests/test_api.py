"""The library API at the package's top level (issue 27): its doctests, the README's quickstart run
verbatim, the straight-through ReLU for functional ReLUs, input validation, and the null, the
metamer test and the result against independent computations."""

from __future__ import annotations

import doctest
import importlib
import itertools
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import stats

import metamers
from metamers.models.layers import LayerReader, relu_layers
from metamers.synthesis.loop import MetamerSynthesis
from metamers.synthesis.methods import METHOD_PRESETS, MethodError, method_settings, resolve_method

#: Modules whose docstrings hold the API's examples.
DOCTESTED = ["metamers.models.wrap", "metamers.data.inputs", "metamers.null", "metamers.metamer", "metamers.measures",
             "metamers.synthesis.methods", "metamers.stats.pairs"]


@pytest.mark.parametrize("module", DOCTESTED)
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_top_level_names_resolve():
    missing = [name for name in metamers.__all__ if not hasattr(metamers, name)]
    assert missing == []


def _quickstart(readme: str) -> str:
    match = re.search(r"^## Python quickstart\n.*?```python\n(.*?)```", readme, re.S | re.M)
    assert match, "README.md has no '## Python quickstart' section with a python code block"
    return match.group(1)


def test_readme_quickstart_runs_verbatim(repo, tmp_path):
    """The README's quickstart, in an empty folder: at most 15 lines, every digit passes the metamer
    test, and the figure and artifact it writes exist (the artifact reads back)."""
    code = _quickstart((repo / "README.md").read_text())
    assert len(code.strip().splitlines()) <= 15
    (tmp_path / "quickstart.py").write_text(code)
    done = subprocess.run([sys.executable, "quickstart.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "metamers.png").stat().st_size > 10_000
    result = metamers.MetamerResult.load(tmp_path / "metamers.h5")
    assert len(result.batch.image_ids) == 10 and result.batch.attrs["method"] == "custom_adam_cosine"  # checks added
    assert (result.batch.pass_iteration >= 0).all()  # each digit stopped at its first pass


class _Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 10 * 10, 5)

    def forward(self, x):
        x = F.relu(self.conv(x))
        return self.fc(torch.flatten(x, 1).relu())


def test_functional_relus_become_modules_with_the_same_values():
    net = _Functional()
    model = metamers.as_model(net, input_shape=(1, 12, 12), name="functional")
    assert relu_layers(model) == ["relu", "relu_1"]
    assert [n for n, _ in model.net.named_children()] == ["conv", "relu", "relu_1", "fc"]  # in the order they run
    x = torch.rand(3, 1, 12, 12)
    assert torch.equal(model(x), net(x))
    assert model.num_classes == 5


def test_the_straight_through_relu_reaches_a_functional_relu():
    """At the rewritten ReLU, the method's rule applies (feather2023: straight-through), and the
    gradient passes where the input is negative, as the identity's would."""
    model = metamers.as_model(_Functional(), input_shape=(1, 12, 12))
    target = metamers.Metamer(torch.rand(1, 1, 12, 12), model, "relu", method="adam").targets[0]
    assert target.fake_relu
    reader = LayerReader(model, ["relu"], fake_relu=["relu"])
    x = torch.rand(1, 1, 12, 12, requires_grad=True)
    reader(x)["relu"].sum().backward()
    conv = model.net.conv
    z = torch.rand(1, 1, 12, 12, requires_grad=True)
    conv(model.normalize(z)).sum().backward()  # the gradient of the identity in place of the ReLU
    assert torch.allclose(x.grad, z.grad, atol=1e-6)


def test_single_applies_the_methods_straight_through_relu():
    """The trap of issue 27: MetamerSynthesis.single took the real ReLU unless told otherwise."""
    from metamers.models.architectures import LeNet5

    lenet = metamers.as_model(LeNet5(), input_shape=(1, 28, 28))
    x = torch.rand(1, 1, 28, 28)
    assert MetamerSynthesis.single(lenet, "relu1", x, "feather2023", 0).targets[0].fake_relu
    assert not MetamerSynthesis.single(lenet, "relu1", x, "feather2023", 0, fake_relu=False).targets[0].fake_relu
    assert not MetamerSynthesis.single(lenet, "conv1", x, "feather2023", 0).targets[0].fake_relu
    assert not MetamerSynthesis.single(lenet, "relu1", x, resolve_method("adam", {"fake_relu": False}), 0).targets[0].fake_relu


def test_method_settings_accepts_names_overrides_and_complete_settings():
    for preset in METHOD_PRESETS:
        full = resolve_method(preset)
        assert method_settings(preset) == full
        assert method_settings(full) == full  # complete settings are checked and kept
    assert method_settings({"preset": "adam", "lr": 0.05})["lr"] == 0.05
    with pytest.raises(MethodError, match="names the preset it overrides under 'preset'"):
        method_settings({"lr": 0.05})
    with pytest.raises(MethodError, match="momentum"):
        metamers.Metamer(torch.rand(1, 1, 28, 28), metamers.as_model(nn.Sequential(nn.Flatten(), nn.Linear(784, 2)),
                                                                      input_shape=(1, 28, 28)),
                         "1", method="adam", momentum=0.9)


@pytest.fixture
def linear():
    torch.manual_seed(0)
    return metamers.as_model(nn.Sequential(nn.Flatten(), nn.Linear(144, 6), nn.ReLU(), nn.Linear(6, 3)),
                             input_shape=(1, 12, 12), name="linear")


@pytest.mark.parametrize("images, message", [
    (torch.full((2, 1, 12, 12), 200.0), "divide by 255 or pass them as uint8"),
    (torch.rand(1, 12, 12), "add a batch dimension"),
    (torch.rand(2, 3, 12, 12), r"expected shape \(N, 1, 12, 12\), the model's input"),
    (torch.rand(2, 1, 12, 12) - 0.5, "the model applies its own normalisation"),
    (torch.full((2, 1, 12, 12), float("nan")), "NaN or infinite"),
    (torch.ones(2, 1, 12, 12, dtype=torch.int32), "uint8 images in 0-255"),
])
def test_references_are_refused_with_what_was_expected(linear, images, message):
    with pytest.raises(metamers.InputError, match=message):
        metamers.Metamer(images, linear, "2", method="adam")


def test_uint8_references_are_read_as_0_255(linear):
    x8 = torch.randint(0, 256, (2, 1, 12, 12), dtype=torch.uint8)
    a = metamers.Metamer(x8, linear, "2", method="adam").synthesis.reference
    b = metamers.Metamer(x8.float() / 255, linear, "2", method="adam").synthesis.reference
    assert torch.equal(a, b)


def test_a_raw_module_is_refused_naming_as_model():
    with pytest.raises(TypeError, match="metamers.as_model"):
        metamers.Metamer(torch.rand(1, 1, 12, 12), nn.Linear(3, 3), "weight", method="adam")
    with pytest.raises(ValueError, match="input_shape=\\(channels, height, width\\)"):
        metamers.as_model(nn.Linear(3, 3))


def test_the_null_is_the_maximum_over_every_pair_by_scipy(linear):
    """A pool of 40 images (read in 8 bits), all 780 pairs: each threshold is the maximum of scipy's
    statistic over the pairs (Spearman, Pearson; snr_db by its formula), and the null warns that it
    is weak."""
    pool = torch.rand(40, 1, 12, 12, generator=torch.Generator().manual_seed(3))
    with pytest.warns(metamers.WeakNullWarning, match="40 pool images"):
        null = metamers.compute_null(linear, "2", pool)
    acts = LayerReader(linear, ["2"])(torch.round(pool * 255) / 255)["2"].double().numpy()  # read in 8 bits
    pairs = list(itertools.combinations(range(40), 2))
    assert null.n_pairs == len(pairs)
    spearman = max(stats.spearmanr(acts[i], acts[j]).statistic for i, j in pairs)
    pearson = max(stats.pearsonr(acts[i], acts[j]).statistic for i, j in pairs)
    snr = max(max(10 * np.log10(np.sum(acts[a] ** 2) / np.sum((acts[a] - acts[b]) ** 2)) for a, b in ((i, j), (j, i)))
              for i, j in pairs)
    assert null.thresholds["spearman"] == pytest.approx(spearman, abs=1e-5)
    assert null.thresholds["pearson"] == pytest.approx(pearson, abs=1e-5)
    assert null.thresholds["snr_db"] <= snr + 1e-4  # each pair's reference side is drawn at random


def test_metamer_test_against_scipy(linear):
    """Values equal scipy's statistics of the 8-bit images' activations; verdicts compare them with
    the thresholds (a tie passes); the class test compares the model's classes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metamers.WeakNullWarning)
        null = metamers.compute_null(linear, "2", torch.rand(30, 1, 12, 12, generator=torch.Generator().manual_seed(4)))
    g = torch.Generator().manual_seed(5)
    reference = torch.rand(4, 1, 12, 12, generator=g)
    images = torch.cat([reference[:2], torch.rand(2, 1, 12, 12, generator=g)])
    rows = metamers.metamer_test(linear, "2", images, reference, null)
    q = lambda x: torch.round(x * 255) / 255  # noqa: E731 - the 8-bit images
    a, r = (LayerReader(linear, ["2"])(q(x))["2"].double().numpy() for x in (images, reference))
    want = [stats.spearmanr(a[i], r[i]).statistic for i in range(4)]
    assert np.allclose(rows["spearman"], want, atol=1e-5)
    assert rows["spearman_passed"].tolist() == [v >= null.thresholds["spearman"] for v in rows["spearman"]]
    classes = linear(q(images)).argmax(1) == linear(q(reference)).argmax(1)
    assert rows["class_pass"].tolist() == classes.tolist()
    assert rows["passed"].tolist()[:2] == [True, True]  # an image is its own metamer


def test_result_round_trip_and_its_test(linear, tmp_path):
    """A result saved and loaded (with its target and null) gives the same summary; its test's
    values equal metamer_test on its images."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metamers.WeakNullWarning)
        null = metamers.compute_null(linear, "2", torch.rand(30, 1, 12, 12, generator=torch.Generator().manual_seed(6)))
    reference = torch.rand(3, 1, 12, 12, generator=torch.Generator().manual_seed(7))
    result = metamers.Metamer(reference, linear, "2", method="adam_cosine", iterations=100, null=null,
                              labels=[0, 1, 2]).synthesize(progress=False)
    path = result.save(tmp_path / "m.h5")
    loaded = metamers.MetamerResult.load(path, targets=[(linear, "2")], null=null)
    assert np.array_equal(loaded.batch.metamer_uint8, result.batch.metamer_uint8)
    assert loaded.summary().equals(result.summary())
    direct = metamers.metamer_test(linear, "2", result.metamers, result.reference, null)
    assert np.allclose(result.summary()["linear/2:spearman"], direct["spearman"])
    assert result.passed.tolist() == direct["passed"].tolist()


def test_compare_representations_reads_images_like_activations(linear):
    g = torch.Generator().manual_seed(8)
    x, y = torch.rand(12, 1, 12, 12, generator=g), torch.rand(12, 1, 12, 12, generator=g)
    by_images = metamers.compare_representations(x, y, ["linear_cka", "rsa_correlation_spearman"], model=linear,
                                                 layer="2", n_permutations=0, n_bootstrap=0)
    reader = LayerReader(linear, ["2"])
    q = lambda t: torch.round(t * 255) / 255  # noqa: E731
    by_arrays = metamers.compare_representations(reader(q(x))["2"].double().numpy(), reader(q(y))["2"].double().numpy(),
                                                 ["linear_cka", "rsa_correlation_spearman"], n_permutations=0,
                                                 n_bootstrap=0)
    assert np.allclose(by_images["value"], by_arrays["value"])


def test_recognizability_counts_the_models_classes(linear):
    images = torch.rand(10, 1, 12, 12, generator=torch.Generator().manual_seed(9))
    predicted = linear(torch.round(images * 255) / 255).argmax(1).numpy()
    labels = predicted.copy()
    labels[:3] = (labels[:3] + 1) % 3
    assert metamers.recognizability(linear, images, labels) == pytest.approx(0.7)


def test_the_docs_quickstart_is_the_readmes(repo):
    """docs/getting-started.md shows the same code as the README (which the test above runs)."""
    page = (repo / "docs" / "getting-started.md").read_text()
    match = re.search(r"```python\n(.*?)```", page[page.index("## Python quickstart"):], re.S)
    assert match and match.group(1) == _quickstart((repo / "README.md").read_text())


def test_in_place_and_nested_functional_relus_keep_the_values_and_the_state_dict():
    """An in-place ReLU's later readers read its output; a module's own functional ReLU becomes its
    child; unused members and every state-dict name stay; dropout is traced in eval mode."""
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Linear(6, 6)

        def forward(self, x):
            return F.relu(self.c(x)) + x

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.block, self.fc2, self.unused = nn.Linear(6, 6), Block(), nn.Linear(6, 3), nn.Linear(2, 2)

        def forward(self, x):
            x = self.fc1(torch.flatten(x, 1))
            x.relu_()
            x = F.dropout(x, 0.5, training=self.training)
            return self.fc2(self.block(x))

    torch.manual_seed(0)
    net = Net()
    names = sorted(net.state_dict())
    x = torch.randn(4, 6)
    want = net.eval()(x)
    model = metamers.as_model(net, input_shape=(1, 1, 6))
    assert torch.equal(model.net(x), want) and torch.equal(model.net(x), model.net(x))
    assert sorted(model.net.state_dict()) == names
    assert relu_layers(model) == ["relu_", "block.relu"]


def test_torchvision_densenet_keeps_its_layers():
    """DenseNet applies its last ReLU as a function: it becomes the module ``relu``; every block stays
    readable and the state dict keeps its names."""
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.densenet121(weights=None).eval()
    names = sorted(net.state_dict())
    x = torch.rand(1, 3, 64, 64)
    want = net(x)
    model = metamers.as_model(net, input_shape=(3, 64, 64))
    assert sorted(model.net.state_dict()) == names and torch.allclose(model.net(x), want, atol=1e-5)
    read = LayerReader(model, ["features.denseblock1", "relu"], fake_relu=["relu"])(x)
    assert read["relu"].shape == (1, 1024, 2, 2)


def test_joint_targets_and_nulls_of_other_models(linear, tmp_path):
    """Two models at once: the test runs at each target with its own null; a null computed on
    another model of the same name is refused."""
    torch.manual_seed(1)
    other = metamers.as_model(nn.Sequential(nn.Flatten(), nn.Linear(144, 5), nn.ReLU(), nn.Linear(5, 3)),
                              input_shape=(1, 12, 12), name="other")
    pool = torch.rand(40, 1, 12, 12, generator=torch.Generator().manual_seed(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metamers.WeakNullWarning)
        nulls = [metamers.compute_null(m, layer, pool) for m, layer in ((linear, "2"), (other, "1"))]
        impostor = metamers.compute_null(metamers.as_model(nn.Sequential(nn.Flatten(), nn.Linear(144, 6), nn.ReLU(),
                                                                         nn.Linear(6, 3)), input_shape=(1, 12, 12),
                                                           name="linear"), "2", pool)
    reference = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(3))
    result = metamers.Metamer(reference, targets=[(linear, "2"), (other, "1")], method="adam", iterations=20,
                              null=nulls).synthesize(progress=False)
    rows = result.test()
    assert sorted(set(zip(rows["measured_model"], rows["measured_layer"]))) == [("linear", "2"), ("other", "1")]
    assert "passed" in result.summary()
    with pytest.raises(ValueError, match="belong to no target"):
        metamers.Metamer(reference, linear, "2", method="adam", null=impostor)
    with pytest.raises(ValueError, match="compute the null on the model under test"):
        metamers.metamer_test(linear, "2", reference, reference, impostor)


@pytest.mark.parametrize("kwargs, message", [
    ({"image_ids": ["a", "a"]}, "image ids must be distinct"),
    ({"comparison": "bogus"}, "unknown comparison 'bogus'"),
])
def test_metamer_arguments_are_checked(linear, kwargs, message):
    with pytest.raises(ValueError, match=message):
        metamers.Metamer(torch.rand(2, 1, 12, 12), linear, "2", method="adam", **kwargs)


def test_a_functional_relu_node_is_refused_where_the_straight_through_relu_cannot_reach():
    """A network not rewritten by as_model (a workflow source's): matching its functional ReLU node
    under a method's fake_relu is an error saying how, not a silent real ReLU."""
    from metamers.models import Classifier
    from metamers.models.layers import LayerError, uses_fake_relu

    raw = Classifier(_Functional(), (0.0,), (1.0,), (1, 12, 12), 5, "raw")
    with pytest.raises(LayerError, match="metamers.as_model"):
        uses_fake_relu(raw, "relu", True, None)
    assert uses_fake_relu(raw, "relu", True, False) is False and uses_fake_relu(raw, "relu", False, None) is False
    assert uses_fake_relu(metamers.as_model(_Functional(), input_shape=(1, 12, 12)), "relu", True, None)

    class Block(nn.Module):  # a functional ReLU inside a module: the graph node "block.relu"
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(144, 3)

        def forward(self, x):
            return F.relu(self.fc(torch.flatten(x, 1)))

    class Outer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = Block()

        def forward(self, x):
            return self.block(x)

    nested = Classifier(Outer(), (0.0,), (1.0,), (1, 12, 12), 3, "nested")
    with pytest.raises(LayerError, match="applied as a function"):
        uses_fake_relu(nested, "block.relu", True, None)
