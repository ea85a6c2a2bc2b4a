"""Label spaces and class maps: the 16-way ImageNet decision against a hand computation, the
shipped category map, and evaluators that no map joins to the images' labels."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from metamers.config import ConfigError, validate_config
from metamers.labels import (
    ClassMap,
    class_map_problem,
    decide,
    image_label_space,
    load_class_map,
    model_label_space,
)


def test_the_decision_is_the_category_of_the_highest_ranked_mapped_logit():
    # 6 model classes: 0, 1 -> label 2; 3 -> label 0; 5 -> label 1; 2 and 4 unmapped
    cmap = ClassMap("m", "t", np.array([2, 2, -1, 0, -1, 1]), "x.json")
    logits = np.array([[0.1, 0.2, 9.0, 0.3, 8.0, 0.0],    # 2 and 4 unmapped: the best mapped is 3 -> 0
                       [5.0, 0.0, 0.0, 4.0, 0.0, 4.5],    # 0 -> 2
                       [0.0, 0.0, 0.0, 0.0, 0.0, 0.1],    # 5 -> 1
                       [-3.0, -1.0, -9.0, -2.0, 7.0, -5.0]])  # 1 -> 2
    np.testing.assert_array_equal(cmap.decide(logits), [0, 2, 1, 2])
    np.testing.assert_array_equal(decide(torch.from_numpy(logits), cmap).numpy(), [0, 2, 1, 2])
    np.testing.assert_array_equal(decide(torch.from_numpy(logits)).numpy(), [2, 0, 5, 4])  # no map: argmax
    with pytest.raises(ValueError, match="is for 6 classes, the logits have 4"):
        cmap.decide(logits[:, :4])
    with pytest.raises(ValueError, match="is for 6 classes, the logits have 4"):
        decide(torch.from_numpy(logits[:, :4]), cmap)


def _imagenet16_config(study_config, shared):
    config = copy.deepcopy(study_config)
    config["images"] = {"type": "folder", "root": str(shared / "data" / "imagenet16"), "labels": "imagenet16"}
    config["models"]["effnet"] = {"source": "timm", "name": "efficientnet_lite0", "checkpoint": "x.pth"}
    config["class_maps"] = {"imagenet16": {"from": "imagenet", "path": str(shared / "data" / "imagenet16_categories.json")}}
    config["evaluators"] = ["effnet"]
    return config


def test_the_shipped_imagenet16_map_gives_the_16_way_decision(study_config, shared):
    config = validate_config(_imagenet16_config(study_config, shared))
    folders = sorted(p.name for p in (shared / "data" / "imagenet16").iterdir() if p.is_dir())
    cmap = load_class_map(config, {name: k for k, name in enumerate(folders)})
    categories = json.loads((shared / "data" / "imagenet16_categories.json").read_text())["categories"]
    assert len(cmap.mapped) == 207 and len(cmap.target) == 1000
    for name, indices in categories.items():
        assert set(cmap.target[indices]) == {folders.index(name)}
    logits = np.zeros((3, 1000))
    logits[0, 0] = 10  # class 0 (tench) is in no category: the best mapped logit decides
    logits[0, 404] = 5  # airplane
    logits[1, categories["dog"][7]] = 3
    logits[1, categories["cat"][0]] = 2.9
    logits[2] = -1.0
    logits[2, categories["truck"][-1]] = -0.5
    np.testing.assert_array_equal(cmap.decide(logits), [folders.index("airplane"), folders.index("dog"),
                                                        folders.index("truck")])


def test_an_evaluator_no_map_joins_is_a_config_error_naming_both(study_config, shared):
    config = _imagenet16_config(study_config, shared)
    config["models"]["cifar"] = {"source": "checkpoint", "architecture": "cifar_resnet20", "path": "r.th"}
    config["evaluators"] = ["effnet", "cifar"]
    with pytest.raises(ConfigError, match=r"evaluators: evaluator 'cifar' classifies in label space 'cifar10', the "
                                          r"images 'folder' are labelled in 'imagenet16', and no class map joins them "
                                          r"\(class_maps.imagenet16 maps from 'imagenet'\)"):
        validate_config(config)
    mnist = copy.deepcopy(study_config)
    mnist["models"]["resnet18"] = {"source": "torchvision", "name": "resnet18", "weights": "ResNet18_Weights.DEFAULT"}
    mnist["evaluators"] = ["lenet5_standard", "resnet18"]
    with pytest.raises(ConfigError, match=r"evaluator 'resnet18' classifies in label space 'imagenet', the images "
                                          r"'mnist_test' are labelled in 'mnist'"):
        validate_config(mnist)


def test_label_spaces_come_from_sources_or_are_given(study_config):
    config = copy.deepcopy(study_config)
    config["models"].update({
        "t": {"source": "train", "architecture": "mlp", "data": {"type": "fashion_mnist"}},
        "rb": {"source": "robustbench", "name": "Standard", "dataset": "cifar100", "threat_model": "Linf",
               "model_dir": "m"},
        "ck": {"source": "checkpoint", "architecture": "lenet5", "path": "c.pt", "classes": "fashion_mnist"},
    })
    assert [model_label_space(config, m) for m in ("lenet5_standard", "t", "rb", "ck")] == [
        "mnist", "fashion_mnist", "cifar100", "fashion_mnist"]
    assert image_label_space(config) == "mnist"
    assert class_map_problem(config, "lenet5_standard") is None
    assert "label space 'fashion_mnist'" in class_map_problem(config, "t")


def test_a_mapped_evaluator_decides_in_the_images_label_space():
    import torch

    from metamers.models.classifier import Classifier
    from metamers.stats.recognizability import predict

    torch.manual_seed(0)
    model = Classifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1000)), (0.0,), (1.0,),
                       (3, 8, 8), 1000, name="wide")
    target = np.full(1000, -1)
    target[[5, 17, 400]] = [0, 1, 1]
    target[900:] = 2
    cmap = ClassMap("imagenet", "three", target, "m.json")
    images = np.random.default_rng(0).integers(0, 256, size=(12, 3, 8, 8), dtype=np.uint8)
    with torch.no_grad():
        logits = model(torch.from_numpy(images).float() / 255).numpy()
    mapped = np.concatenate([[5, 17, 400], np.arange(900, 1000)])
    expected = target[mapped[np.argmax(logits[:, mapped], axis=1)]]  # by hand: the best mapped class's category
    np.testing.assert_array_equal(predict(model, images, class_map=cmap), expected)
    np.testing.assert_array_equal(predict(model, images), logits.argmax(1))
    assert set(expected) <= {0, 1, 2} and not np.array_equal(expected, logits.argmax(1))


# --------------------------------------------------------------------------- the published 16-way decision

def _published_16_way(logits: np.ndarray, categories: dict, folders: list[str]) -> np.ndarray:
    """Feather et al.'s ``force_16_choice`` (analysis_scripts/helpers_16_choice.py), written out:
    walk each row's classes from the highest logit down and take the category of the first class
    that a category lists."""
    owner = {int(k): folders.index(name) for name, indices in categories.items() for k in indices}
    decided = []
    for row in np.asarray(logits):
        for k in np.argsort(-row, kind="stable"):
            if int(k) in owner:
                decided.append(owner[int(k)])
                break
    return np.array(decided)


def _both_maps(study_config, shared):
    """(folders, {map file: (ClassMap, its categories)}) for the published and the strict map."""
    folders = sorted(p.name for p in (shared / "data" / "imagenet16").iterdir() if p.is_dir())
    maps = {}
    for file in ("imagenet16_categories_feather2023.json", "imagenet16_categories.json"):
        config = _imagenet16_config(study_config, shared)
        config["class_maps"]["imagenet16"]["path"] = str(shared / "data" / file)
        cmap = load_class_map(validate_config(config), {name: k for k, name in enumerate(folders)})
        maps[file] = (cmap, json.loads((shared / "data" / file).read_text())["categories"])
    return folders, maps


def test_the_imagenet16_config_decides_with_the_published_map_and_names_the_strict_one(repo):
    import yaml

    text = (repo / "configs" / "imagenet16.yaml").read_text()
    entry = yaml.safe_load(text)["class_maps"]["imagenet16"]
    assert entry["from"] == "imagenet" and entry["path"].endswith("/imagenet16_categories_feather2023.json")
    assert "# imagenet16: {from: imagenet, path: ../shared/data/imagenet16_categories.json}" in text  # the option


def test_the_published_map_puts_class_544_in_oven_and_decides_as_the_published_code(study_config, shared):
    folders, maps = _both_maps(study_config, shared)
    (published, pub_categories), (strict, strict_categories) = maps.values()
    oven = folders.index("oven")
    assert (len(published.mapped), len(strict.mapped)) == (208, 207)
    assert published.target[544] == oven and strict.target[544] == -1
    assert np.flatnonzero(published.target != strict.target).tolist() == [544]  # the one difference
    dog, cat, airplane = pub_categories["dog"][3], pub_categories["cat"][0], pub_categories["airplane"][0]
    logits = np.random.default_rng(1).normal(-5.0, 0.1, size=(4, 1000))
    logits[0, [544, dog]] = [3.0, 2.0]           # 544 the highest logit of all, then a dog
    logits[1, [0, 544, cat]] = [9.0, 3.0, 2.0]   # an unmapped class above 544, then a cat
    logits[2, [airplane, 544]] = [4.0, 3.0]      # a mapped class above 544: it decides with either map
    plane = folders.index("airplane")
    by_hand = {"published": [oven, oven, plane], "strict": [folders.index("dog"), folders.index("cat"), plane]}
    for name, (cmap, categories) in zip(("published", "strict"), maps.values()):
        expected = _published_16_way(logits, categories, folders)
        np.testing.assert_array_equal(expected[:3], by_hand[name])
        np.testing.assert_array_equal(cmap.decide(logits), expected)
        np.testing.assert_array_equal(decide(torch.from_numpy(logits), cmap).numpy(), expected)


def test_the_two_maps_disagree_exactly_where_class_544_is_the_top_mapped_class(study_config, shared):
    folders, maps = _both_maps(study_config, shared)
    (published, pub_categories), (strict, strict_categories) = maps.values()
    logits = np.random.default_rng(0).normal(size=(2000, 1000))
    pub, std = published.decide(logits), strict.decide(logits)
    np.testing.assert_array_equal(pub, _published_16_way(logits, pub_categories, folders))
    np.testing.assert_array_equal(std, _published_16_way(logits, strict_categories, folders))
    np.testing.assert_array_equal(decide(torch.from_numpy(logits), published).numpy(), pub)
    mapped = sorted(int(k) for indices in pub_categories.values() for k in indices)
    top_544 = np.asarray(mapped)[np.argmax(logits[:, mapped], axis=1)] == 544
    oven = folders.index("oven")
    assert (pub[top_544] == oven).all()
    # where 544 leads, the strict map falls to the next-ranked mapped class: another category here
    np.testing.assert_array_equal(pub != std, top_544)
    assert top_544.sum() == 15  # about 1 in 130 (the published force_16_choice differs from the strict map on 15)
