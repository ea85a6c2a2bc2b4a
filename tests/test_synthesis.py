"""The loss, the normalized-gradient step and the synthesis loop against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metamers.data import to_uint8
from metamers.models import Classifier
from metamers.models.architectures import LeNet5
from metamers.synthesis import (
    MetamerSynthesis,
    SynthesisError,
    initial_images,
    start_seed,
)
from metamers.synthesis.losses import l2, normalized_l2
from metamers.synthesis.methods import METHOD_PRESETS, resolve_method
from metamers.synthesis.normalized_gradient import NormalizedGradient
from metamers.synthesis.optimizers import FEATHER_REFERENCE_NUMEL, OPTIMIZERS, effective_step
from metamers.synthesis.schedules import step_halving


def test_normalized_l2_matches_numpy():
    rng = np.random.default_rng(0)
    a, r = rng.normal(size=(3, 4, 5)), rng.normal(size=(3, 4, 5))
    expected = [np.linalg.norm(a[i] - r[i]) / np.linalg.norm(r[i]) for i in range(3)]
    got = normalized_l2(torch.from_numpy(a), torch.from_numpy(r)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(l2(torch.from_numpy(a), torch.from_numpy(r)).numpy(),
                               [np.linalg.norm(a[i] - r[i]) for i in range(3)], rtol=1e-12)


@pytest.mark.parametrize("loss", [normalized_l2, l2])
def test_the_losses_gradients_equal_autograds_through_the_norm(loss):
    """The difference norm's own backward pass (one multiplication) gives autograd's gradient of
    ``||a - r|| (/ ||r||)`` in both arguments, and 0 (not NaN) for an image equal to its reference."""
    rng = np.random.default_rng(2)
    a = torch.from_numpy(rng.normal(size=(3, 4, 5))).requires_grad_(True)
    r = torch.from_numpy(rng.normal(size=(3, 4, 5))).requires_grad_(True)
    with torch.no_grad():
        a[2] = r[2]
    weights = torch.tensor([0.5, -2.0, 1.0], dtype=torch.float64)
    ga, gr = torch.autograd.grad((weights * loss(a, r)).sum(), (a, r))
    scale = r.flatten(1).norm(dim=1) if loss is normalized_l2 else torch.ones(3, dtype=torch.float64)
    by_autograd = (a - r).flatten(1).norm(dim=1) / scale
    ea, er = torch.autograd.grad((weights * by_autograd).sum(), (a, r))
    torch.testing.assert_close(ga[:2], ea[:2], rtol=1e-12, atol=0)
    torch.testing.assert_close(gr[:2], er[:2], rtol=1e-12, atol=0)
    assert torch.equal(ga[2], torch.zeros_like(ga[2]))  # autograd's norm gives 0 there too
    if loss is l2:
        assert torch.equal(gr[2], torch.zeros_like(gr[2]))


@pytest.mark.parametrize("per_image", [False, True], ids=["one tensor", "a tensor per image"])
def test_normalized_gradient_step_is_per_image_unit_step(per_image):
    grad = torch.tensor([[3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 10.0], [0.0] * 4]).reshape(3, 1, 2, 2)
    params = [torch.zeros(1, 1, 2, 2, requires_grad=True) for _ in range(3)] if per_image else [
        torch.zeros(3, 1, 2, 2, requires_grad=True)]
    for p, g in zip(params, grad.split(1) if per_image else [grad]):
        p.grad = g.clone()
    NormalizedGradient(params, lr=0.5).step()
    expected = -0.5 * np.array([[0.6, 0.8, 0, 0], [0, 0, 0, 1.0], [0] * 4])  # a zero gradient: no move
    got = torch.cat([p.detach() for p in params]).reshape(3, 4).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_step_halving_blocks_of_the_published_schedule():
    mult = step_halving(24000, blocks=8, gamma=0.5)
    assert [mult(i) for i in (0, 2999, 3000, 5999, 6000, 23999)] == [1, 1, 0.5, 0.5, 0.25, 0.5**7]


def test_effective_step_keeps_rms_per_pixel():
    assert effective_step(1.0, FEATHER_REFERENCE_NUMEL, True) == pytest.approx(1.0)
    assert effective_step(1.0, 784, True) == pytest.approx(np.sqrt(784 / 150528))
    assert effective_step(0.3, 784, False) == 0.3


def _hand_loss_and_grad(W, x, r):
    """Loss ||Wx - Wr|| / ||Wr|| and its gradient W^T (Wx - Wr) / (||Wx - Wr|| ||Wr||)."""
    d = W @ x - W @ r
    loss = np.linalg.norm(d) / np.linalg.norm(W @ r)
    grad = W.T @ d / (np.linalg.norm(d) * np.linalg.norm(W @ r))
    return loss, grad


def test_feather_steps_match_hand_computation(tiny_linear):
    ref = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    method = resolve_method("feather2023", {"iterations": 2, "step_size": 0.05, "scale_step_to_input": False,
                                            "schedule": {"type": "step_halving", "blocks": 2}})
    synth = MetamerSynthesis.single(tiny_linear, "fc", ref, method, seed=7)
    x = synth.x.detach().double().reshape(2, 16).numpy().copy()
    W = tiny_linear.net.fc.weight.double().numpy()
    r = (ref.double() * 255).round().div(255).reshape(2, 16).numpy()  # the 8-bit reference
    result = synth.synthesize(progress=False)
    for i in range(2):
        xi = x[i]
        for step, s in enumerate((0.05, 0.025)):
            loss, g = _hand_loss_and_grad(W, xi, r[i])
            assert result.loss[i, step] == pytest.approx(loss, rel=1e-5)
            xi = np.clip(xi - s * g / np.linalg.norm(g), 0, 1)
        np.testing.assert_allclose(result.metamer[i].reshape(16), xi, atol=1e-6)
        assert result.final_loss[i] == pytest.approx(_hand_loss_and_grad(W, xi, r[i])[0], rel=1e-5)


def test_initial_noise_follows_the_published_distribution():
    ref = torch.zeros(4, 3, 64, 64)
    x = initial_images({"type": "noise", "mean": 0.5, "std": 0.05}, ref, [0, 1, 2, 3])
    assert x.min() >= 0 and x.max() <= 1
    assert x.mean().item() == pytest.approx(0.5, abs=2e-3)
    assert x.std().item() == pytest.approx(0.05, rel=0.02)
    # each image's noise comes from its own seed alone
    again = initial_images({"type": "noise", "mean": 0.5, "std": 0.05}, ref[:2], [3, 1])
    assert torch.equal(again[0], x[3]) and torch.equal(again[1], x[1])


def test_an_image_starts_from_the_same_point_at_every_layer_method_and_batch():
    model = _lenet()
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    ids = ["a", "b", "c", "d"]
    starts = {
        (layer, method): MetamerSynthesis.single(model, layer, images, resolve_method(method), seed=9, image_ids=ids).x
        for layer in ("relu1", "linear2") for method in ("feather2023", "adam")
    }
    first = starts[("relu1", "feather2023")]
    assert all(torch.equal(x, first) for x in starts.values())
    alone = MetamerSynthesis.single(model, "relu3", images[2:3], resolve_method("adam"), seed=9, image_ids=["c"]).x
    assert torch.equal(alone[0], first[2])
    other_seed = MetamerSynthesis.single(model, "relu1", images, resolve_method("adam"), seed=10, image_ids=ids).x
    assert not torch.equal(other_seed, first)
    assert start_seed(9, "c") == start_seed(9, "c") != start_seed(9, "d")


def _lenet() -> Classifier:
    torch.manual_seed(0)
    return Classifier(LeNet5(), mean=(0.0,), std=(1.0,), input_shape=(1, 28, 28), num_classes=10, name="lenet")


@pytest.mark.parametrize("method", sorted(METHOD_PRESETS))
def test_batch_gives_the_same_result_as_single_images(method):
    model = _lenet()
    ref = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    ids = ["x0", "x1", "x2"]
    settings = resolve_method(method, {"iterations": 15})
    # a residual optimizer forms a Jacobian row per activation: the logits
    layer = "linear2" if OPTIMIZERS[settings["optimizer"]].residual else "relu2"
    out = MetamerSynthesis.single(model, layer, ref, settings, seed=0, image_ids=ids).synthesize(progress=False)
    for i in range(3):
        alone = MetamerSynthesis.single(model, layer, ref[i : i + 1], settings, seed=0,
                                 image_ids=ids[i : i + 1]).synthesize(progress=False)
        np.testing.assert_array_equal(alone.metamer[0], out.metamer[i])  # batch-invariant: bitwise
        np.testing.assert_array_equal(alone.loss[0], out.loss[i])
    # one pass for the whole batch: the same to float32 rounding, not bitwise
    batched = MetamerSynthesis.single(model, layer, ref, settings, seed=0, image_ids=ids,
                               batch_invariant=False).synthesize(progress=False)
    np.testing.assert_allclose(batched.metamer, out.metamer, atol=1e-4)
    np.testing.assert_allclose(batched.loss, out.loss, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("method", ["feather2023", "adam"])
def test_synthesis_reduces_the_loss_and_is_seeded(method):
    model = _lenet()
    ref = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    settings = resolve_method(method, {"iterations": 300})
    a = MetamerSynthesis.single(model, "relu1", ref, settings, seed=11).synthesize(progress=False)
    b = MetamerSynthesis.single(model, "relu1", ref, settings, seed=11).synthesize(progress=False)
    c = MetamerSynthesis.single(model, "relu1", ref, settings, seed=12).synthesize(progress=False)
    assert np.array_equal(a.metamer, b.metamer) and np.array_equal(a.loss, b.loss)
    assert not np.array_equal(a.metamer, c.metamer)
    assert (a.final_loss < 0.5 * a.loss[:, 0]).all()
    assert a.metamer.min() >= 0 and a.metamer.max() <= 1


def test_non_finite_loss_names_images_and_iteration(tiny_linear):
    tiny_linear.net.fc.weight.data.zero_()  # zero activations: 0 / 0 loss
    synth = MetamerSynthesis.single(tiny_linear, "fc", torch.rand(2, 1, 4, 4), resolve_method("adam"), seed=0,
                                    image_ids=["img-a", "img-b"])
    start = synth.x
    with pytest.raises(SynthesisError, match=r"iteration 0 for image\(s\) \['img-a', 'img-b'\]"):
        synth.synthesize(progress=False)
    assert torch.equal(synth.x, start)  # nothing was stepped with a non-finite objective


class _NaNGradientOnce(torch.autograd.Function):
    """The identity, whose first backward pass returns NaN (a finite objective, a NaN gradient)."""

    calls = 0

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        _NaNGradientOnce.calls += 1
        return torch.full_like(grad, float("nan")) if _NaNGradientOnce.calls == 1 else grad


@pytest.mark.parametrize("method", ["adam", "feather2023", "polyak"])
def test_a_non_finite_gradient_is_reported_at_its_own_iteration(tiny_linear, method):
    _NaNGradientOnce.calls = 0
    handle = tiny_linear.net.register_forward_pre_hook(lambda module, args: (_NaNGradientOnce.apply(args[0]),))
    try:
        synth = MetamerSynthesis.single(tiny_linear, "fc", torch.rand(2, 1, 4, 4), resolve_method(method), seed=0,
                                        image_ids=["img-a", "img-b"])
        # each image has its own backward pass (batch-invariant): only the first gets the NaN
        with pytest.raises(SynthesisError, match=r"the step of iteration 0 made the pixels of image\(s\) "
                                                 r"\['img-a'\] non-finite from a finite objective"):
            synth.synthesize(progress=False)
    finally:
        handle.remove()
    assert _NaNGradientOnce.calls >= 2
    assert not torch.isfinite(synth.x[0]).any() and torch.isfinite(synth.x[1]).all()


def test_reference_shape_must_fit_the_model(tiny_linear):
    with pytest.raises(ValueError, match=r"shape \(N, 1, 4, 4\), got \(2, 3, 4, 4\)"):
        MetamerSynthesis.single(tiny_linear, "fc", torch.rand(2, 3, 4, 4), resolve_method("adam"), seed=0)


def test_to_uint8_rounds_and_clips():
    x = torch.tensor([-0.2, 0.0, 0.5 / 255, 0.7 / 255, 1.0, 1.3])
    assert to_uint8(x).tolist() == [0, 0, 0, 1, 255, 255]


def test_method_presets_are_overridden_not_replaced():
    m = resolve_method("fast", {"preset": "feather2023", "iterations": 10, "init": {"std": 0.1}})
    assert m["iterations"] == 10 and m["optimizer"] == "normalized_gradient"
    assert m["init"] == {"type": "noise", "mean": 0.5, "std": 0.1}
    assert m["schedule"] == METHOD_PRESETS["feather2023"]["schedule"]
    with pytest.raises(KeyError, match="unknown preset 'nope'; valid: feather2023, adam"):
        resolve_method("x", {"preset": "nope"})


@pytest.mark.parametrize("entry, message", [
    ({"momentum": 0.9}, r"method 'm': key\(s\) \['momentum'\] are not used by optimizer 'adam'; its keys: lr, betas, eps"),
    ({"preset": "feather2023", "lr": 0.1},
     r"key\(s\) \['lr'\] are not used by optimizer 'normalized_gradient'; its keys: step_size, scale_step_to_input"),
    ({"preset": "sgd_momentum", "betas": [0.9, 0.99]}, r"\['betas'\] are not used by optimizer 'sgd'; its keys: lr, momentum"),
    ({"schedule": {"type": "constant", "blocks": 4}},
     r"schedule key\(s\) \['blocks'\] are not used by schedule 'constant'; its keys: \(none\)"),
    ({"init": {"type": "noise", "sigma": 0.1}}, r"init key\(s\) \['sigma'\] are not used by init 'noise'; its keys: mean, std"),
    ({"on_success": "stop"}, "on_success has no effect without check_every"),
    ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'; valid: normalized_gradient, adam, sgd, polyak, gauss_newton, lbfgs"),
])
def test_a_method_key_nothing_uses_is_an_error(entry, message):
    with pytest.raises(KeyError, match=message):
        resolve_method("m", {"preset": "adam", **entry})


def test_changing_the_optimizer_drops_the_presets_keys_of_the_old_one():
    m = resolve_method("m", {"preset": "feather2023", "optimizer": "adam", "lr": 0.02})
    assert m["optimizer"] == "adam" and m["lr"] == 0.02
    assert "step_size" not in m and "scale_step_to_input" not in m
    assert m["schedule"] == METHOD_PRESETS["feather2023"]["schedule"]
    # without a step size for the new optimizer there is no silent library default
    with pytest.raises(KeyError, match="method 'm': optimizer 'sgd' needs lr .*; add it to the method"):
        resolve_method("m", {"preset": "feather2023", "optimizer": "sgd"})
    with pytest.raises(KeyError, match="optimizer 'normalized_gradient' needs step_size"):
        resolve_method("m", {"preset": "adam", "optimizer": "normalized_gradient"})


def test_the_straight_through_relu_is_on_at_relu_layers_by_default(tiny_linear):
    """Gradient at a ReLU layer: identity backward with the straight-through ReLU (the
    default at ReLU modules), the real ReLU's masked gradient when it is turned off."""
    from metamers.models.layers import uses_fake_relu

    assert all(METHOD_PRESETS[m]["fake_relu"] for m in METHOD_PRESETS)
    assert uses_fake_relu(tiny_linear, "relu", True, None) is True
    assert uses_fake_relu(tiny_linear, "fc", True, None) is False  # not a ReLU module: as it is
    assert uses_fake_relu(tiny_linear, "relu", True, False) is False  # the layer's own setting wins
    assert uses_fake_relu(tiny_linear, "relu", False, None) is False
    assert uses_fake_relu(tiny_linear, "relu", False, True) is True
    ref = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(8))
    W = tiny_linear.net.fc.weight.double()
    grads = {}
    for fake in (True, False):
        synth = MetamerSynthesis.single(tiny_linear, "relu", ref, resolve_method("adam"), seed=1, fake_relu=fake)
        x = synth.x.detach().clone().requires_grad_(True)
        synth.objective.losses(x).sum().backward()
        grads[fake] = x.grad.double().reshape(16)
        pre = W @ x.detach().double().reshape(16)
        target = torch.relu(W @ synth.reference.double().reshape(16))
        d = torch.relu(pre) - target
        upstream = d / (d.norm() * target.norm())
        mask = torch.ones_like(pre) if fake else (pre > 0).double()
        torch.testing.assert_close(grads[fake], W.T @ (upstream * mask), rtol=1e-4, atol=1e-6)
    assert not torch.allclose(grads[True], grads[False])
