"""A generation job end to end through the package: artifact content, reproducibility, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from metamers.artifacts import read_metamer_batch
from metamers.config import validate_config
from metamers.data import load_image_set
from metamers.jobs.generate import generate as generate_batch
from metamers.models import load_model
from metamers.models.layers import LayerError, LayerReader
from metamers.synthesis import SynthesisError


@pytest.fixture
def tiny(config):
    config["images"].update(per_class=1, limit=2)
    config["methods"] = {"feather2023": {"iterations": 8}, "adam": {"iterations": 8}}
    return validate_config(config)


def test_artifact_holds_what_the_job_computed(tiny, tmp_path):
    path = generate_batch(tiny, "feather2023", "lenet5_robust", "relu2", "b000", tmp_path / "a.h5", progress=False)
    art = read_metamer_batch(path)
    images = load_image_set(tiny["images"])
    assert art.image_ids == images.ids and len(art.image_ids) == 2
    assert art.labels.tolist() == [0, 1]
    assert art.loss.shape == (2, 8)
    assert art.attrs["references_held_out"] == 1  # the shipped MNIST test digits
    assert art.attrs["seed"] == 0  # the base seed; each image's start seed is recorded beside it
    from metamers.synthesis import start_seed

    assert art.start_seed.tolist() == [start_seed(0, i) for i in art.image_ids]
    job = json.loads(art.attrs["job_config"])
    assert job["method_settings"]["iterations"] == 8 and job["layer"] == "relu2"
    key = tiny.generation_key("feather2023", "lenet5_robust", "relu2", "b000")  # the one key of the job
    assert {k: job[k] for k in key} == json.loads(json.dumps(key)) and job["device"] == "cpu"
    np.testing.assert_array_equal(art.metamer_uint8, np.round(art.metamer * 255).astype(np.uint8))
    model = load_model(tiny["models"], "lenet5_robust")
    reader = LayerReader(model, ["relu2"])
    with torch.no_grad():
        met = reader(torch.from_numpy(art.metamer_uint8).float() / 255)["relu2"].flatten(1).numpy()
        ref = model(torch.from_numpy(art.reference).float() / 255)
    np.testing.assert_allclose(art.activations_metamer, met, rtol=2e-3, atol=2e-3)
    np.testing.assert_array_equal(art.generator_prediction, ref.argmax(1).numpy())
    # distances from the reference, of the 8-bit metamer and of the (float) starting point
    from skimage.metrics import structural_similarity

    from metamers.synthesis import initial_images

    reference = art.reference.astype(np.float64) / 255
    start = initial_images(job["method_settings"]["init"], torch.from_numpy(reference).float(),
                           art.start_seed.tolist()).numpy().astype(np.float64)
    np.testing.assert_array_equal(art.start_uint8, np.round(start * 255).astype(np.uint8))
    for group, image in (("metamer", art.metamer_uint8.astype(np.float64) / 255), ("start", start)):
        diff = (image - reference).reshape(2, -1)
        np.testing.assert_allclose(art.distances[group]["l2"], np.sqrt((diff**2).sum(1)), rtol=1e-6)
        np.testing.assert_allclose(art.distances[group]["rms"], np.sqrt((diff**2).mean(1)), rtol=1e-6)
        ssim = [structural_similarity(image[i, 0], reference[i, 0], gaussian_weights=True,
                                      use_sample_covariance=False, data_range=1.0) for i in range(2)]
        np.testing.assert_allclose(art.distances[group]["ssim"], ssim, atol=1e-6)
    assert (art.distances["start"]["ssim"] < 0.2).all()  # noise shares little structure with a digit
    assert art.attrs["seconds_per_iteration"] > 0


def test_other_class_start_is_a_training_digit_of_another_class(tiny, tmp_path):
    tiny = tiny.to_dict()  # a study is read-only: change a copy and validate it again
    tiny["methods"]["adam"]["init"] = {"type": "other_class"}
    tiny = validate_config(tiny)
    art = read_metamer_batch(generate_batch(tiny, "adam", "lenet5_standard", "relu3", "b000", tmp_path / "a.h5",
                                            progress=False))
    pool = load_image_set({"type": "mnist"})  # the null pool of the held-out test digits: training digits
    for start, label in zip(art.start_uint8, art.labels):
        match = [i for i in pool.ids if np.array_equal(pool.pixels(i), start[0])]
        assert match and all(pool.labels[i] != label for i in match)


def test_same_config_gives_the_same_numbers(tiny, tmp_path):
    a = read_metamer_batch(generate_batch(tiny, "adam", "lenet5_standard", "relu3", "b000", tmp_path / "a.h5", progress=False))
    b = read_metamer_batch(generate_batch(tiny, "adam", "lenet5_standard", "relu3", "b000", tmp_path / "b.h5", progress=False))
    np.testing.assert_array_equal(a.metamer, b.metamer)
    np.testing.assert_array_equal(a.loss, b.loss)


def test_bad_job_keys_name_the_valid_choices(tiny, tmp_path):
    out = tmp_path / "x.h5"
    with pytest.raises(KeyError, match="configured: relu1, relu2, relu3, linear2"):
        generate_batch(tiny, "adam", "lenet5_standard", "conv9", "b000", out)
    with pytest.raises(KeyError, match="unknown batch 'b007'; configured: b000"):
        generate_batch(tiny, "adam", "lenet5_standard", "relu1", "b007", out)
    with pytest.raises(KeyError, match="unknown method 'lbfgs'; configured: feather2023, adam"):
        generate_batch(tiny, "lbfgs", "lenet5_standard", "relu1", "b000", out)
    tiny = tiny.to_dict()
    tiny["generators"]["lenet5_standard"]["layers"].append("conv9")
    tiny = validate_config(tiny)
    with pytest.raises(LayerError, match="valid layers: conv1, relu1, maxpool1, conv2"):
        generate_batch(tiny, "adam", "lenet5_standard", "conv9", "b000", out)
    assert not out.exists()


def test_non_finite_loss_fails_the_job_without_an_artifact(tiny, tmp_path, monkeypatch):
    from metamers.synthesis import losses

    out = tmp_path / "x.h5"
    nan = lambda a, r: (a - r).flatten(1).sum(1) * float("nan")  # noqa: E731
    with losses.LOSSES.override("normalized_l2", nan), pytest.raises(SynthesisError,
                                                                     match=r"iteration 0 for image\(s\) \['mnist-"):
        generate_batch(tiny, "adam", "lenet5_standard", "relu1", "b000", out, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("method, layer", [("adam", "relu2"), ("feather2023", "linear2")])
def test_images_per_job_changes_no_metamer(config, tmp_path, method, layer):
    """An image starts from the same noise whatever its batch, and gives the identical metamer
    in a batch of 20 and alone (batch_invariant, the default); batched passes agree only to
    float32 rounding, which grows over the iterations at the logits."""
    config["methods"] = {method: {"iterations": 150}}
    big = validate_config({**config, "images_per_job": 20})
    small = validate_config({**config, "images_per_job": 1})
    a = read_metamer_batch(generate_batch(big, method, "lenet5_standard", layer, "b000", tmp_path / "a.h5",
                                          progress=False))
    k = 7
    b = read_metamer_batch(generate_batch(small, method, "lenet5_standard", layer, f"b{k:03d}", tmp_path / "b.h5",
                                          progress=False))
    assert len(a.image_ids) == 20 and b.image_ids == [a.image_ids[k]]
    assert b.start_seed[0] == a.start_seed[k] and len(set(a.start_seed.tolist())) == 20
    np.testing.assert_array_equal(b.loss[0], a.loss[k])
    np.testing.assert_array_equal(b.metamer[0], a.metamer[k])
    np.testing.assert_array_equal(b.metamer_uint8[0], a.metamer_uint8[k])


def test_relu_layers_use_the_straight_through_relu_by_default(tiny, tmp_path):
    tiny = tiny.to_dict()
    tiny["generators"]["lenet5_standard"]["layers"][1] = {"name": "relu2", "fake_relu": False}
    tiny = validate_config(tiny)
    used = {}
    for layer in ("relu1", "relu2", "linear2"):
        art = read_metamer_batch(generate_batch(tiny, "adam", "lenet5_standard", layer, "b000",
                                                tmp_path / f"{layer}.h5", progress=False))
        used[layer] = art.attrs["fake_relu"]
        assert json.loads(art.attrs["job_config"])["fake_relu"] == bool(used[layer])
    assert used == {"relu1": 1, "relu2": 0, "linear2": 0}
    tiny = tiny.to_dict()
    tiny["methods"]["adam"]["fake_relu"] = False
    off = read_metamer_batch(generate_batch(validate_config(tiny), "adam", "lenet5_standard", "relu1", "b000",
                                            tmp_path / "off.h5", progress=False))
    assert off.attrs["fake_relu"] == 0


def test_the_target_is_the_8bit_reference(tiny_linear):
    from metamers.synthesis import MetamerSynthesis
    from metamers.synthesis.methods import resolve_method

    ref = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    synth = MetamerSynthesis.single(tiny_linear, "fc", ref, resolve_method("adam"), seed=0)
    eight_bit = (ref * 255).round() / 255
    with torch.no_grad():
        per_image = lambda x: torch.cat([tiny_linear.net.fc(x[i : i + 1].flatten(1)) for i in range(2)])  # noqa: E731
        assert torch.equal(synth.objective.activations[0], per_image(eight_bit))
        assert not torch.equal(synth.objective.activations[0], per_image(ref))
    assert torch.equal(synth.reference, eight_bit)
