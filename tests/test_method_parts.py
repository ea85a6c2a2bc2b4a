"""The parts a method is composed of: every optimizer, schedule, starting point and loss,
against hand computations and the properties their documentation states."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from metamers.data import quantize
from metamers.models.architectures import LeNet5
from metamers.models.classifier import Classifier
from metamers.synthesis import OPTIMIZERS, MetamerSynthesis, resolve_method
from metamers.synthesis.losses import mse, one_minus_pearson
from metamers.synthesis.gauss_newton import GaussNewton, residual_jacobian
from metamers.synthesis.objective import Objective, Target
from metamers.synthesis.polyak import PolyakStep
from metamers.synthesis.schedules import SCHEDULES, cosine, warm_restarts
from metamers.synthesis.starts import STARTS, initial_images, radial_frequency

#: Settings each optimizer needs (its required keys) for the convex case below.
OPTIMIZER_SETTINGS = {
    "normalized_gradient": {"step_size": 0.2, "scale_step_to_input": False,
                            "schedule": {"type": "step_halving", "blocks": 4}},
    "adam": {"lr": 0.05},
    "sgd": {"lr": 0.05, "momentum": 0.5},
    "polyak": {"lr": 0.5, "momentum": 0.5},
    "gauss_newton": {"lr": 1.0, "damping": 0.1},
    "lbfgs": {"lr": 1.0, "max_iter": 5, "line_search_fn": "strong_wolfe"},
}


def test_every_optimizer_has_settings_here():
    assert set(OPTIMIZER_SETTINGS) == set(OPTIMIZERS)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_decreases_a_convex_loss_and_is_batch_invariant(tiny_linear, name):
    """On ``||W x - W r||^2``-like losses of a linear layer (convex in the pixels), every optimizer
    brings the loss down, and each image's result in a batch equals its result alone."""
    method = resolve_method("m", {"preset": "adam", "optimizer": name, "iterations": 30, "loss": "mse",
                                  **OPTIMIZER_SETTINGS[name]})
    ref = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    out = MetamerSynthesis.single(tiny_linear, "fc", ref, method, seed=1, image_ids=["a", "b", "c"]).synthesize(
        progress=False)
    assert (out.final_loss < 0.5 * out.loss[:, 0]).all(), (out.final_loss, out.loss[:, 0])
    alone = MetamerSynthesis.single(tiny_linear, "fc", ref[1:2], method, seed=1, image_ids=["b"]).synthesize(
        progress=False)
    np.testing.assert_array_equal(alone.metamer[0], out.metamer[1])


def _residual_norm_step(opt: PolyakStep, xs: list[torch.Tensor], a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """One step of ``opt`` on ``f_i = ||A x_i - b_i||`` (each ``x_i`` a ``(1, n)`` parameter); ``f`` before it."""
    def closure():
        opt.zero_grad()
        f = torch.stack([(a @ x[0] - bi).norm() for x, bi in zip(xs, b)])
        f.sum().backward()
        opt.set_objective(f)
        return f.sum()
    return opt.step(closure)


def test_polyak_step_is_its_formula_per_image():
    """``x <- x - lr f / ||g||^2 g`` with ``g`` the gradient of ``f = ||A x - b||`` (by hand:
    ``A^T (A x - b) / f``), each image from its own values; ``max_step`` caps the step's length."""
    rng = np.random.default_rng(0)
    a, b, x0 = rng.normal(size=(3, 5)), rng.normal(size=(2, 3)), rng.normal(size=(2, 5))
    for max_step in (0.0, 0.05):
        xs = [torch.tensor(x[None], requires_grad=True) for x in x0]
        _residual_norm_step(PolyakStep(xs, lr=0.7, max_step=max_step), xs, torch.tensor(a), torch.tensor(b))
        for x, start, bi in zip(xs, x0, b):
            r = a @ start - bi
            g = a.T @ r / np.linalg.norm(r)
            step = 0.7 * np.linalg.norm(r) / (g @ g) * g
            if max_step:
                step *= min(1.0, max_step / np.linalg.norm(step))
            np.testing.assert_allclose(x.detach().numpy()[0], start - step, rtol=1e-10)


def test_polyak_full_step_solves_an_orthonormal_system_at_the_nearest_solution():
    """With orthonormal rows (``A A^T = I``) one full step (``lr = 1``) reaches ``f = 0`` at the
    solution nearest the start, ``x0 - A^T (A x0 - b)``: the point gradient flow goes to."""
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(6, 3)))
    a, b, x0 = q.T, np.array([[0.3, -1.0, 2.0]]), np.random.default_rng(2).normal(size=6)
    xs = [torch.tensor(x0[None], requires_grad=True)]
    _residual_norm_step(PolyakStep(xs, lr=1.0), xs, torch.tensor(a), torch.tensor(b))
    np.testing.assert_allclose(xs[0].detach().numpy()[0], x0 - a.T @ (a @ x0 - b[0]), atol=1e-12)
    np.testing.assert_allclose(a @ xs[0].detach().numpy()[0], b[0], atol=1e-12)


def test_polyak_momentum_adds_the_previous_step():
    rng = np.random.default_rng(3)
    a, b, x0 = rng.normal(size=(4, 6)), rng.normal(size=(1, 4)), rng.normal(size=6)
    xs = [torch.tensor(x0[None], requires_grad=True)]
    opt = PolyakStep(xs, lr=0.4, momentum=0.6)

    def polyak(x):
        r = a @ x - b[0]
        g = a.T @ r / np.linalg.norm(r)
        return 0.4 * np.linalg.norm(r) / (g @ g) * g

    v1 = polyak(x0)
    x1 = x0 - v1
    x2 = x1 - (0.6 * v1 + polyak(x1))
    for _ in range(2):
        _residual_norm_step(opt, xs, torch.tensor(a), torch.tensor(b))
    np.testing.assert_allclose(xs[0].detach().numpy()[0], x2, rtol=1e-10)


def test_polyak_takes_no_step_where_the_squared_gradient_norm_underflows():
    """A float32 gradient of norm 1e-20 squares below the smallest normal float32: no Polyak step
    (it would be about f / tiny long),
    while a gradient of norm 1e-3 gets its formula's step."""
    xs = [torch.zeros(1, 4, requires_grad=True), torch.zeros(1, 4, requires_grad=True)]
    xs[0].grad = torch.full((1, 4), 5e-21)
    xs[1].grad = torch.full((1, 4), 5e-4)
    opt = PolyakStep(xs, lr=1.0)
    opt.set_objective(torch.tensor([0.5, 0.5]))
    opt.step()
    assert torch.equal(xs[0].detach(), torch.zeros(1, 4))
    torch.testing.assert_close(xs[1].detach(), torch.full((1, 4), -0.5 / (4 * 5e-4**2) * 5e-4))


def test_polyak_needs_each_images_objective_and_valid_settings():
    x = torch.zeros(1, 3, requires_grad=True)
    opt = PolyakStep([x])
    x.grad = torch.ones_like(x)
    with pytest.raises(RuntimeError, match="needs each image's objective"):
        opt.step()
    opt.set_objective(torch.ones(2))
    with pytest.raises(RuntimeError, match="steps 1 images but was given 2 objective values"):
        opt.step()
    for bad, match in (({"lr": 0.0}, "lr must be positive"), ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
                       ({"max_step": -1.0}, "max_step must be >= 0")):
        with pytest.raises(ValueError, match=match):
            PolyakStep([x], **bad)


def test_gauss_newton_full_step_lands_on_the_nearest_metamer_of_a_linear_layer(tiny_linear):
    """At a linear layer ``a(x) = W x`` one undamped full step reaches ``a(x) = a(r)`` at the
    point nearest the start, ``x0 - W^T (W W^T)^-1 W (x0 - r)`` (numpy, float64)."""
    weight = tiny_linear_weight(tiny_linear).double().numpy()
    ref = 0.5 + 0.05 * torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    method = resolve_method("g", {"preset": "gauss_newton", "iterations": 1, "damping": 0.0})
    synth = MetamerSynthesis.single(tiny_linear, "fc", ref, method, seed=5, image_ids=["a", "b"])
    x0 = synth.x.double().numpy().reshape(2, -1)
    r = synth.reference.double().numpy().reshape(2, -1)
    out = synth.synthesize(progress=False)
    for i in range(2):
        expected = x0[i] - weight.T @ np.linalg.solve(weight @ weight.T, weight @ (x0[i] - r[i]))
        assert ((expected > 0) & (expected < 1)).all()  # no clamping involved
        np.testing.assert_allclose(out.metamer[i].ravel(), expected, atol=2e-5)
    assert (out.final_loss < 1e-5).all() and (out.loss[:, 0] > 0.01).all(), (out.final_loss, out.loss[:, 0])


def test_gauss_newton_forms_no_jacobian_for_a_frozen_image(tiny_linear, monkeypatch):
    """With ``on_success: stop`` an image frozen at its first pass costs no more Jacobians: image
    ``i`` has one formed at each iteration before its first pass, and its metamer is that iterate."""
    import metamers.synthesis.loop as loop

    calls = []
    real = loop.residual_jacobian
    monkeypatch.setattr(loop, "residual_jacobian", lambda r, p, *a: calls.append(len(p)) or real(r, p, *a))
    ref = 0.2 + 0.6 * torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(11))
    method = resolve_method("g", {"preset": "gauss_newton", "iterations": 20, "lr": 0.3, "check_every": 1,
                                  "on_success": "stop"})
    out = MetamerSynthesis.single(tiny_linear, "fc", ref, method, seed=5, thresholds={"pearson": 0.999}
                                  ).synthesize(progress=False)
    assert (out.pass_iteration >= 1).all() and len(set(out.pass_iteration.tolist())) > 1, out.pass_iteration
    assert calls == [1] * int(out.pass_iteration.sum())  # each image alone (batch-invariant parts)
    np.testing.assert_array_equal(out.first_pass, out.metamer)


def test_gauss_newton_step_is_the_damped_formula_per_image():
    """``x <- x - lr J^T (J J^T + lambda I)^-1 r``, ``lambda = damping * mean(diag(J J^T))``, each
    image from its own residual and Jacobian; with a huge damping it turns to the gradient
    ``J^T r / lambda``."""
    rng = np.random.default_rng(6)
    j, r, x0 = rng.normal(size=(2, 3, 5)), rng.normal(size=(2, 3)), rng.normal(size=(2, 5))
    for damping in (0.0, 0.3, 1e8):
        xs = [torch.tensor(x[None]) for x in x0]
        opt = GaussNewton(xs, lr=0.7, damping=damping)
        opt.set_system(torch.tensor(r), torch.tensor(j))
        opt.step()
        for i in range(2):
            gram = j[i] @ j[i].T
            lam = max(damping, 1e-12) * np.trace(gram) / 3
            step = 0.7 * j[i].T @ np.linalg.solve(gram + lam * np.eye(3), r[i])
            np.testing.assert_allclose(xs[i].numpy()[0], x0[i] - step, rtol=1e-9, atol=1e-12)
            if damping == 1e8:
                np.testing.assert_allclose(step, 0.7 * j[i].T @ r[i] / lam, rtol=1e-6)


def test_gauss_newton_needs_its_system_and_valid_settings():
    x = torch.zeros(1, 4)
    opt = GaussNewton([x])
    with pytest.raises(RuntimeError, match="needs each image's residual and Jacobian"):
        opt.step()
    with pytest.raises(ValueError, match=r"residuals must be \(N, M\) and Jacobians \(N, M, P\), got \(1, 3\) and \(1, 2, 4\)"):
        opt.set_system(torch.zeros(1, 3), torch.zeros(1, 2, 4))
    opt.set_system(torch.zeros(2, 3), torch.zeros(2, 3, 4))
    with pytest.raises(RuntimeError, match="steps 1 images but was given 2 residuals"):
        opt.step()
    for bad, message in (({"lr": 0}, "lr must be positive"), ({"damping": -1}, "damping must be >= 0"),
                         ({"max_outputs": 0}, "max_outputs must be a positive integer")):
        with pytest.raises(ValueError, match=message):
            GaussNewton([x], **bad)


def test_residual_jacobian_equals_autograd_per_image():
    """Each image's Jacobian rows (in chunks of 3 of the 10 logits) equal
    ``torch.autograd.functional.jacobian`` of that image alone."""
    torch.manual_seed(0)
    tiny_lenet = Classifier(LeNet5(), mean=(0.0,), std=(1.0,), input_shape=(1, 28, 28), num_classes=10, name="l")
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(7))
    params = [x[i : i + 1].clone().requires_grad_(True) for i in range(2)]
    residual = tiny_lenet(torch.cat(params)) * torch.tensor([[1.0], [2.0]])
    jac = residual_jacobian(residual, params, chunk=3)
    assert jac.shape == (2, 10, 784)
    for i, scale in enumerate((1.0, 2.0)):
        expected = torch.autograd.functional.jacobian(lambda v: scale * tiny_lenet(v)[0], x[i : i + 1])
        torch.testing.assert_close(jac[i], expected.reshape(10, 784), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="residual has 2 images but 1 parameters"):
        residual_jacobian(residual, params[:1])


def test_objective_residuals_square_to_the_weighted_normalized_l2(tiny_linear):
    """A joint objective's residuals: ``||res||^2 = sum_k w_k normalized_l2_k^2``, each target's
    block ``sqrt(w_k) (a_k(x) - a_k(r)) / ||a_k(r)||``, and its losses those of the objective."""
    ref, x = (torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(s)) for s in (8, 9))
    targets = [Target(tiny_linear, "fc", weight=0.3), Target(tiny_linear, "relu", weight=0.7)]
    objective = Objective(targets, ref, "normalized_l2", [slice(0, 3)])
    res, losses = objective.residuals(x)
    a_fc, r_fc = x.flatten(1) @ tiny_linear_weight(tiny_linear).T, ref.flatten(1) @ tiny_linear_weight(tiny_linear).T
    a_relu, r_relu = a_fc.clamp_min(0), r_fc.clamp_min(0)
    expected = torch.cat([0.3 ** 0.5 * (a_fc - r_fc) / r_fc.norm(dim=1, keepdim=True),
                          0.7 ** 0.5 * (a_relu - r_relu) / r_relu.norm(dim=1, keepdim=True)], dim=1)
    torch.testing.assert_close(res, expected, rtol=1e-5, atol=1e-6)
    nl2 = [(a - b).norm(dim=1) / b.norm(dim=1) for a, b in ((a_fc, r_fc), (a_relu, r_relu))]
    torch.testing.assert_close(res.square().sum(1), 0.3 * nl2[0] ** 2 + 0.7 * nl2[1] ** 2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses, objective.losses(x), rtol=1e-6, atol=1e-7)
    assert objective.output_sizes() == [("tiny/fc", 6), ("tiny/relu", 6)]


@pytest.mark.parametrize("loss", ["l2", "mse"])
def test_residuals_of_l2_and_mse_give_their_losses(tiny_linear, loss):
    """``l2`` is the residual's norm, ``mse`` its squared norm (the difference over sqrt(D))."""
    ref, x = (torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(s)) for s in (12, 13))
    res, losses = Objective([Target(tiny_linear, "fc")], ref, loss, [slice(0, 3)]).residuals(x)
    w = tiny_linear_weight(tiny_linear)
    diff = x.flatten(1) @ w.T - ref.flatten(1) @ w.T
    expected = diff.norm(dim=1) if loss == "l2" else diff.square().mean(dim=1)
    torch.testing.assert_close(res.norm(dim=1) if loss == "l2" else res.square().sum(dim=1), expected,
                               rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(losses, expected, rtol=1e-5, atol=1e-7)


def tiny_linear_weight(model) -> torch.Tensor:
    return next(model.parameters()).detach()


@pytest.mark.parametrize(("entry", "message"), [
    ({"priors": [{"type": "total_variation", "weight": 1.0}]}, "takes no image priors"),
    ({"loss": "one_minus_pearson"}, "normalized_l2, l2, mse; got 'one_minus_pearson'"),
])
def test_gauss_newton_method_rejects_what_has_no_zero_residual(entry, message):
    with pytest.raises(KeyError, match=message):
        resolve_method("g", {"preset": "gauss_newton", **entry})


def test_gauss_newton_rejects_a_target_wider_than_max_outputs(tiny_linear):
    method = resolve_method("g", {"preset": "gauss_newton", "max_outputs": 5})
    with pytest.raises(ValueError, match=r"targets have 6 values per image \(tiny/fc 6\), above max_outputs 5"):
        MetamerSynthesis.single(tiny_linear, "fc", torch.rand(1, 1, 4, 4), method, seed=0)


def test_polyak_preset_keeps_the_published_parts_and_rejects_a_foreign_key():
    method = resolve_method("polyak")
    assert (method["optimizer"], method["lr"], method["momentum"], method["loss"]) == ("polyak", 0.5, 0.5,
                                                                                        "normalized_l2")
    assert method["init"] == {"type": "noise", "mean": 0.5, "std": 0.05}
    with pytest.raises(KeyError, match=r"\['betas'\] are not used by optimizer 'polyak'; its keys: lr, momentum, "
                                       "max_step"):
        resolve_method("p", {"preset": "polyak", "betas": [0.9, 0.99]})


def test_cosine_and_warm_restarts_by_formula():
    f = cosine(100, eta_min=0.1)
    assert f(0) == pytest.approx(1.0) and f(100) == pytest.approx(0.1)
    assert f(50) == pytest.approx(0.1 + 0.9 * 0.5)
    g = warm_restarts(100, cycles=4)
    assert [g(i) for i in (0, 25, 50, 75)] == pytest.approx([1.0] * 4)  # each cycle restarts at 1
    assert g(12) == pytest.approx((1 + math.cos(math.pi * 12 / 25)) / 2)
    assert set(SCHEDULES) >= {"constant", "step_halving", "cosine", "warm_restarts", "reduce_on_plateau"}


def test_mse_and_one_minus_pearson_against_numpy():
    rng = np.random.default_rng(1)
    a, r = rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 5, 4))
    ta, tr = torch.from_numpy(a), torch.from_numpy(r)
    np.testing.assert_allclose(mse(ta, tr).numpy(), ((a - r) ** 2).reshape(3, -1).mean(1), rtol=1e-12)
    pearson = [np.corrcoef(a[i].ravel(), r[i].ravel())[0, 1] for i in range(3)]
    np.testing.assert_allclose(one_minus_pearson(ta, tr).numpy(), 1 - np.asarray(pearson), rtol=1e-10)
    assert one_minus_pearson(ta, 3 * ta + 1).abs().max() < 1e-12  # an increasing affine map: 0


@pytest.fixture(scope="module")
def references() -> torch.Tensor:
    """Two 8-bit references: an MNIST-like blob and an RGB image with structure at every scale."""
    g = torch.Generator().manual_seed(5)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    blob = torch.exp(-((yy - 14) ** 2 + (xx - 12) ** 2) / 30)[None, None].expand(2, 3, 28, 28)
    rgb = torch.rand(2, 3, 28, 28, generator=g)
    return quantize(blob * torch.tensor([0.6, 0.2]).reshape(2, 1, 1, 1) + 0.4 * rgb)


def test_uniform_and_reference_noise_have_their_statistics(references):
    seeds = list(range(100, 102))
    big = torch.zeros(2, 3, 200, 200)
    u = initial_images({"type": "uniform", "low": 0.2, "high": 0.6}, big, seeds)
    assert u.min() >= 0.2 and u.max() <= 0.6 and float(u.mean()) == pytest.approx(0.4, abs=2e-3)
    mid = torch.full((2, 3, 200, 200), 0.5)
    n = initial_images({"type": "reference_noise", "sigma": 0.05}, mid, seeds) - mid
    assert float(n.std()) == pytest.approx(0.05, rel=0.01) and float(n.mean()) == pytest.approx(0, abs=1e-3)


def test_blend_is_exact(references):
    seeds = [7, 8]
    noise = initial_images({"type": "noise", "mean": 0.5, "std": 0.05}, references, seeds)
    blend = initial_images({"type": "blend", "alpha": 0.3}, references, seeds)
    torch.testing.assert_close(blend, 0.3 * references + 0.7 * noise, rtol=0, atol=0)


@pytest.mark.parametrize("cutoff", [0.1, 0.5])
def test_lowpass_has_no_energy_above_its_cutoff_and_keeps_the_rest(references, cutoff):
    x = initial_images({"type": "lowpass", "cutoff": cutoff}, references, [1, 2])
    spectrum = torch.fft.rfft2(x.double())
    reference = torch.fft.rfft2(references.double())
    above = radial_frequency(28, 28) > cutoff * 0.5
    assert spectrum[..., above].abs().max() < 1e-5 * reference.abs().max()
    torch.testing.assert_close(spectrum[..., ~above], reference[..., ~above], rtol=0, atol=1e-4)


def test_phase_scrambled_keeps_the_amplitude_spectrum_and_mean(references):
    x = initial_images({"type": "phase_scrambled"}, references, [3, 4])
    amp = torch.fft.rfft2(x.double()).abs()
    ref_amp = torch.fft.rfft2(references.double()).abs()
    assert float((amp - ref_amp).abs().max() / ref_amp.max()) < 1e-5
    torch.testing.assert_close(x.double().mean((-2, -1)), references.double().mean((-2, -1)), rtol=0, atol=1e-6)
    assert float((x - references).abs().mean()) > 0.05  # the structure is scrambled
    other = initial_images({"type": "phase_scrambled"}, references, [5, 6])
    assert not torch.equal(x, other)  # the phases come from the image's seed


def test_pool_starts_take_another_class_or_the_pool_mean(references):
    from metamers.synthesis.starts import StartData

    pool = torch.rand(30, 3, 28, 28, generator=torch.Generator().manual_seed(9))
    pool_labels = [k % 3 for k in range(30)]
    data = StartData([0, 2], pool, pool_labels)
    x = initial_images({"type": "other_class"}, references, [11, 12], data)
    for image, label in zip(x, data.labels):
        match = [k for k in range(30) if torch.equal(pool[k], image)]
        assert len(match) == 1 and pool_labels[match[0]] != label  # a pool image, of another class
    torch.testing.assert_close(initial_images({"type": "other_class"}, references, [11, 12], data), x, rtol=0, atol=0)
    assert not torch.equal(initial_images({"type": "other_class"}, references, [13, 14], data), x)
    mean = initial_images({"type": "pool_mean"}, references, [1, 2], data)
    torch.testing.assert_close(mean.double(), pool.double().mean(0).expand(2, 3, 28, 28), rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="init type 'pool_mean' starts from the null pool's images; none was given"):
        initial_images({"type": "pool_mean"}, references, [1, 2])
    with pytest.raises(ValueError, match=r"the pool's images are \(1, 28, 28\), the references \(3, 28, 28\)"):
        initial_images({"type": "pool_mean"}, references, [1, 2], StartData([0, 1], pool[:, :1], pool_labels))


def test_every_registered_start_is_covered_here():
    assert set(STARTS) == {"noise", "uniform", "reference_noise", "blend", "lowpass", "phase_scrambled",
                           "other_class", "pool_mean"}


def test_priors_by_formula():
    from metamers.synthesis.priors import alpha_norm, total_variation

    rng = np.random.default_rng(2)
    x = rng.random((2, 3, 5, 6))
    t = torch.from_numpy(x)
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    for beta in (1.0, 2.0):
        expected = ((dx**2 + dy**2) ** (beta / 2)).reshape(2, -1).mean(1)
        np.testing.assert_allclose(total_variation(t, beta).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(alpha_norm(t, 6.0).numpy(), (np.abs(x - 0.5) ** 6).reshape(2, -1).mean(1), rtol=1e-12)
    assert float(total_variation(torch.full((1, 1, 4, 4), 0.3)).max()) == 0  # a flat image has no variation


def test_priors_add_to_each_images_objective_and_smooth_the_result(tiny_linear):
    """The recorded objective is the loss plus weight x prior; a strong TV prior makes smoother images."""
    from metamers.synthesis.priors import total_variation

    ref = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    entry = {"preset": "adam", "iterations": 40, "lr": 0.05, "loss": "mse"}
    plain = resolve_method("m", entry)
    smooth = resolve_method("m", {**entry, "priors": [{"type": "total_variation", "weight": 5.0}]})
    a = MetamerSynthesis.single(tiny_linear, "fc", ref, plain, seed=1).synthesize(progress=False)
    b = MetamerSynthesis.single(tiny_linear, "fc", ref, smooth, seed=1).synthesize(progress=False)
    # at the common start, the objectives differ by exactly the weighted prior
    start = MetamerSynthesis.single(tiny_linear, "fc", ref, smooth, seed=1).x
    torch.testing.assert_close(torch.from_numpy(b.loss[:, 0] - a.loss[:, 0]).double(),
                               5.0 * total_variation(start).double(), rtol=1e-5, atol=1e-7)
    tv = [float(total_variation(torch.from_numpy(r.metamer)).mean()) for r in (a, b)]
    assert tv[1] < 0.5 * tv[0]


def test_unknown_prior_and_unused_prior_key_are_named():
    with pytest.raises(KeyError, match=r"method 'm': priors\[0\]: unknown prior type 'tv'; valid: total_variation, "
                                       "alpha_norm"):
        resolve_method("m", {"preset": "adam", "priors": [{"type": "tv", "weight": 1}]})
    with pytest.raises(KeyError, match=r"priors\[0\] key\(s\) \['alpha'\] are not used by prior 'total_variation'; "
                                       "its keys: weight, beta"):
        resolve_method("m", {"preset": "adam", "priors": [{"type": "total_variation", "weight": 1, "alpha": 2}]})


@pytest.mark.parametrize("decay", [0.0, 1.0])
def test_fourier_parameterization_maps_back_to_the_same_pixels(references, decay):
    from metamers.synthesis.parameterizations import fourier_scale, make_parameterization

    fourier = make_parameterization({"type": "fourier", "decay": decay}, (3, 28, 28))
    p = fourier.from_image(references)
    assert p.shape == (2, 3, 28, 15, 2)
    torch.testing.assert_close(fourier.to_image(p), references, rtol=0, atol=1e-6)
    # the coefficients are the orthonormal spectrum divided by the 1/f scale
    spectrum = torch.fft.rfft2(references.double(), norm="ortho")
    scale = fourier_scale(28, 28, decay).double()
    torch.testing.assert_close(torch.view_as_complex(p.double().contiguous()) * scale, spectrum, rtol=0, atol=1e-6)
    assert float(scale[0, 0]) == 1.0 and (float(scale.min()) == 1.0 if decay == 0 else float(scale.min()) < 0.1)


def test_fourier_synthesis_keeps_images_in_range_and_is_batch_invariant(tiny_linear):
    ref = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    method = resolve_method("m", {"preset": "adam", "iterations": 30, "lr": 0.05, "loss": "mse",
                                  "parameterization": {"type": "fourier", "decay": 1.0}})
    out = MetamerSynthesis.single(tiny_linear, "fc", ref, method, seed=1, image_ids=["a", "b", "c"]).synthesize(
        progress=False)
    assert out.metamer.min() >= 0 and out.metamer.max() <= 1
    assert (out.final_loss < 0.5 * out.loss[:, 0]).all()
    alone = MetamerSynthesis.single(tiny_linear, "fc", ref[1:2], method, seed=1, image_ids=["b"]).synthesize(
        progress=False)
    np.testing.assert_array_equal(alone.metamer[0], out.metamer[1])
    pixels = MetamerSynthesis.single(tiny_linear, "fc", ref, resolve_method("m", {
        "preset": "adam", "iterations": 30, "lr": 0.05, "loss": "mse"}), seed=1, image_ids=["a", "b", "c"])
    np.testing.assert_allclose(pixels.x.numpy(), MetamerSynthesis.single(  # the same start, in pixels
        tiny_linear, "fc", ref, method, seed=1, image_ids=["a", "b", "c"]).x.numpy(), atol=1e-6)
    assert not np.allclose(out.metamer, pixels.synthesize(progress=False).metamer, atol=1e-3)  # another path


def test_changing_the_parameterization_type_drops_the_old_keys():
    method = resolve_method("m", {"preset": "adam", "parameterization": {"type": "fourier", "decay": 2.0}})
    assert method["parameterization"] == {"type": "fourier", "decay": 2.0}
    with pytest.raises(KeyError, match=r"parameterization key\(s\) \['decay'\] are not used by parameterization "
                                       "'pixels'"):
        resolve_method("m", {"preset": "adam", "parameterization": {"type": "pixels", "decay": 1.0}})
    with pytest.raises(KeyError, match="unknown parameterization type 'wavelet'; valid: pixels, fourier"):
        resolve_method("m", {"preset": "adam", "parameterization": {"type": "wavelet"}})


def _block_means(x: torch.Tensor, size: int) -> torch.Tensor:
    """Each ``size`` x ``size`` block of ``x`` replaced by its mean (numpy, independently of the map)."""
    n, c, h, w = x.shape
    blocks = x.double().numpy().reshape(n, c, h // size, size, w // size, size).mean(axis=(3, 5))
    return torch.from_numpy(np.repeat(np.repeat(blocks, size, axis=2), size, axis=3))


def test_coarse_to_fine_is_the_block_mean_image_until_each_finer_level_joins(references):
    from metamers.synthesis.parameterizations import make_parameterization

    pyramid = make_parameterization({"type": "coarse_to_fine", "levels": 3, "open_every": 10}, (3, 28, 28))
    p = pyramid.from_image(references)
    assert p.shape == (2, 3 * (7 * 7 + 14 * 14 + 28 * 28))
    pyramid.at_iteration(0)  # the coarsest level alone: 4 x 4 block means
    torch.testing.assert_close(pyramid.to_image(p).double(), _block_means(references, 4), rtol=0, atol=1e-6)
    pyramid.at_iteration(19)  # the middle level has joined at 10: 2 x 2 block means
    torch.testing.assert_close(pyramid.to_image(p).double(), _block_means(references, 2), rtol=0, atol=1e-6)
    pyramid.at_iteration(20)  # every level: the image itself
    torch.testing.assert_close(pyramid.to_image(p), references, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="needs an image size divisible by 4, got 30 x 28"):
        make_parameterization({"type": "coarse_to_fine"}, (1, 30, 28))


def test_coarse_to_fine_synthesis_optimises_the_coarse_image_first_and_is_batch_invariant(tiny_linear):
    ref = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    method = resolve_method("m", {"preset": "adam", "iterations": 40, "lr": 0.05, "loss": "mse",
                                  "parameterization": {"type": "coarse_to_fine", "levels": 2, "open_every": 20}})
    synth = MetamerSynthesis.single(tiny_linear, "fc", ref, method, seed=1, image_ids=["a", "b", "c"])
    seen = {}
    step = synth._step
    synth._step = lambda it, *a: (seen.setdefault(it, synth.x.clone()), step(it, *a))[1]
    out = synth.synthesize(progress=False)
    for it in (0, 10, 19):  # the 2 x 2 block-mean image while the coarse level is alone
        torch.testing.assert_close(seen[it].double(), _block_means(seen[it], 2), rtol=0, atol=1e-6)
    assert not torch.allclose(seen[19], seen[0]) and not torch.allclose(seen[30].double(), _block_means(seen[30], 2))
    assert out.metamer.min() >= 0 and out.metamer.max() <= 1 and (out.final_loss < out.loss[:, 0]).all()
    alone = MetamerSynthesis.single(tiny_linear, "fc", ref[1:2], method, seed=1, image_ids=["b"]).synthesize(
        progress=False)
    np.testing.assert_array_equal(alone.metamer[0], out.metamer[1])


def test_reduce_on_plateau_lowers_each_images_step_on_its_own_plateau():
    from metamers.synthesis.schedules import make_scheduler

    params = [torch.zeros(1, requires_grad=True) for _ in range(2)]
    optimizer = torch.optim.SGD([{"params": [p]} for p in params], lr=0.4)
    sched = make_scheduler(optimizer, 100, {"type": "reduce_on_plateau", "factor": 0.5, "patience": 3,
                                            "threshold": 0.01, "min_factor": 0.25})
    lrs = []
    for t in range(12):  # image 0 stalls at 1.0; image 1 keeps improving by 10 % per step
        sched.step(torch.tensor([1.0, 0.9**t]))
        lrs.append([g["lr"] for g in optimizer.param_groups])
    # image 0: best 1.0 at t=0, then 3 steps without improvement halve it, 3 more halve it again,
    # and the floor (0.25 x 0.4) holds after that; image 1 keeps its step
    assert [lr[0] for lr in lrs] == pytest.approx([0.4, 0.4, 0.4, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert [lr[1] for lr in lrs] == pytest.approx([0.4] * 12)
    state = sched.state_dict()
    again = make_scheduler(torch.optim.SGD([{"params": [p]} for p in params], lr=0.4), 100,
                           {"type": "reduce_on_plateau", "factor": 0.5, "patience": 3, "threshold": 0.01,
                            "min_factor": 0.25})
    again.load_state_dict(state)
    assert [g["lr"] for g in again.optimizer.param_groups] == pytest.approx([0.1, 0.4])


def test_reduce_on_plateau_in_synthesis_is_batch_invariant(tiny_linear):
    method = resolve_method("m", {"preset": "adam", "iterations": 40, "lr": 0.2, "loss": "mse",
                                  "schedule": {"type": "reduce_on_plateau", "patience": 3, "factor": 0.5}})
    ref = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    out = MetamerSynthesis.single(tiny_linear, "fc", ref, method, seed=1, image_ids=["a", "b", "c"]).synthesize(
        progress=False)
    alone = MetamerSynthesis.single(tiny_linear, "fc", ref[1:2], method, seed=1, image_ids=["b"]).synthesize(
        progress=False)
    np.testing.assert_array_equal(alone.metamer[0], out.metamer[1])
    assert (out.final_loss < 0.5 * out.loss[:, 0]).all()
