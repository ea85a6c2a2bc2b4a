"""The generation benchmark's reference sets (``bench/generation.py --reference-set``): each set
is other images, a reference never sits in its own null pool, and the default set is the one
that the benchmark has always used; and its variants (``--variant LABEL=PRESET:JSON``): a preset
with some settings replaced, run in rows of their own, and named errors for bad ones."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
import torch


@pytest.fixture(scope="module")
def generation(repo, shared, monkeypatch_module):
    monkeypatch_module.setenv("METAMERS_SHARED", str(shared))
    threads = torch.get_num_threads()  # the benchmark runs one thread per process
    spec = importlib.util.spec_from_file_location("bench_generation", repo / "bench" / "generation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("bench_generation", None)
    spec.loader.exec_module(module)
    yield module
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def monkeypatch_module():
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


def test_cifar_reference_sets_are_disjoint_and_outside_their_pool(generation, shared):
    files = sorted((shared / "data" / "cifar10-samples").glob("*.png"))
    seen = []
    for reference_set in (0, 1):
        images = generation.case_images("resnet20", 8, reference_set)
        ids, x, pool = images.ids, images.references((3, 32, 32)), images.pool((3, 32, 32))
        assert ids == [f.stem for f in files[8 * reference_set:8 * reference_set + 8]]
        # a reference is not among its null pool's images (the pool: the natural images and the
        # CIFAR-10 samples that are not references)
        flat_pool, flat_x = pool.flatten(1), x.flatten(1)
        assert torch.cdist(flat_x, flat_pool).min() > 0
        assert len(pool) == len(list((shared / "data" / "imagenet16").rglob("*.jpg"))) + len(files) - 8
        seen.append(set(ids))
    assert not seen[0] & seen[1]
    # the set wraps around the 20 samples
    ids = generation.case_images("resnet20", 8, 2).ids
    assert ids == [f.stem for f in files[16:]] + [f.stem for f in files[:4]]
    # the labels of a start made from the pool: each image's class, the natural images' -1 (another class)
    images = generation.case_images("resnet20", 8, 1)
    assert images.labels == [int(i.rsplit("_", 1)[1]) for i in images.ids]
    natural = len(list((shared / "data" / "imagenet16").rglob("*.jpg")))
    assert images.pool_labels == [-1] * natural + [int(i.rsplit("_", 1)[1]) for i in images.pool_parts[-1][1]]


def test_lenet_reference_sets(generation):
    from metamers.data import load_image_set

    default, other = (generation.case_images("lenet5_robust", 8, k).ids for k in (0, 1))
    assert default == load_image_set({"type": "mnist_test", "per_class": 1, "seed": 0}).ids[:8]
    assert not set(default) & set(other)


def test_too_many_cifar_references(generation):
    with pytest.raises(ValueError, match="ResNet-20's cases take 1 to 20 references"):
        generation.case_images("resnet20", 21)


def test_a_variant_replaces_only_the_settings_it_names(generation, monkeypatch, tmp_path):
    # fixed thresholds instead of the 1,000,000-pair null (the same for every run here)
    fixed = {"spearman": 0.95, "pearson": 0.95, "snr_db": 12.0, "n_pairs": 0}
    monkeypatch.setattr(generation, "null_thresholds", lambda *args, **kwargs: dict(fixed))
    case = ("lenet5_standard", "linear2", 4, tmp_path)
    preset = generation.run_case(*case[:2], "polyak", *case[2:])
    # the preset's own values as a variant: the same run, in rows of its own
    same = generation.run_case(*case[:2], "polyak", *case[2:], entry={"lr": 0.5, "momentum": 0.5}, label="mine")
    assert preset["preset"] == "polyak" and same["preset"] == "mine"
    for key in ("fraction_passing", "median_pass_iteration", "median_l2", "iterations_run", "budget"):
        assert same[key] == preset[key], key
    assert preset["fraction_passing"] == 1.0 and preset["budget"] == 1000
    # a smaller budget reaches the run: it stops there, before any image has passed
    short = generation.run_case(*case[:2], "polyak", *case[2:], entry={"iterations": 2}, label="short")
    assert short["budget"] == 2 and short["iterations_run"] <= 2
    assert preset["median_pass_iteration"] > 2 and short["fraction_passing"] == 0.0
    joint = generation.run_joint("polyak", 2, tmp_path, entry={"iterations": 1}, label="short")
    assert joint["preset"] == "short" and joint["iterations_run"] <= 1


def test_a_variant_parses_into_its_preset_and_settings(generation):
    label, preset, entry = generation.parse_variant(
        'plateau=polyak_priors:{"schedule": {"type": "reduce_on_plateau", "patience": 20}}')
    assert (label, preset, entry) == ("plateau", "polyak_priors",
                                      {"schedule": {"type": "reduce_on_plateau", "patience": 20}})


@pytest.mark.parametrize("text, message", [
    ("plateau", "a variant is LABEL=PRESET:JSON, got 'plateau'"),
    ('=polyak:{"lr": 1}', "a variant is LABEL=PRESET:JSON"),
    ('polyak=adam:{"lr": 1}', "variant label 'polyak' is a preset's name"),
    ('x=nope:{"lr": 1}', "variant 'x': unknown preset 'nope'; valid: feather2023, adam"),
    ('x=feather2023:{"lr": 1}', "feather2023 is the baseline every row is compared with"),
    ("x=polyak:{lr: 1}", "variant 'x': its settings are not JSON"),
    ("x=polyak:[1]", "variant 'x': its settings must be a non-empty JSON object"),
    ("x=polyak:{}", "variant 'x': its settings must be a non-empty JSON object"),
    ('x=polyak:{"lrr": 1}', r"variant 'x': method 'polyak': key\(s\) \['lrr'\] are not used by optimizer 'polyak'"),
    ('x=polyak:{"schedule": {"type": "cosine", "patience": 3}}', r"schedule key\(s\) \['patience'\] are not used"),
])
def test_a_bad_variant_is_an_error_naming_the_problem(generation, text, message):
    with pytest.raises(ValueError, match=message):
        generation.parse_variant(text)


def test_the_command_line_refuses_a_bad_variant_before_running(repo, shared):
    done = subprocess.run([sys.executable, str(repo / "bench" / "generation.py"), "--variant", "x=polyak:{}",
                           "--cases", "lenet5_standard/relu1"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "METAMERS_SHARED": str(shared)})
    assert done.returncode == 2
    assert "variant 'x': its settings must be a non-empty JSON object" in done.stderr
