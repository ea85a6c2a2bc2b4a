"""Checkpoints: a synthesis interrupted mid-run resumes to the uninterrupted result."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from metamers.models import Classifier
from metamers.models.architectures import LeNet5
from metamers.synthesis import MetamerSynthesis
from metamers.synthesis.methods import resolve_method


class Preempted(Exception):
    pass


@pytest.fixture
def lenet() -> Classifier:
    torch.manual_seed(0)
    return Classifier(LeNet5(), mean=(0.0,), std=(1.0,), input_shape=(1, 28, 28), num_classes=10, name="lenet")


def _make(lenet, method, seed=1):
    ref = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    thresholds = {"pearson": 0.9}
    return MetamerSynthesis.single(lenet, "relu1", ref, method, seed=seed, thresholds=thresholds,
                            image_ids=["a", "b", "c"])


def _interrupt_at(synth, iteration):
    """Make the synthesis raise when it computes the loss of step ``iteration``."""
    calls = {"n": 0}
    step = synth._step

    def wrapped(*args):
        calls["n"] += 1
        if calls["n"] == iteration + 1:
            raise Preempted
        return step(*args)

    synth._step = wrapped


@pytest.mark.parametrize(("preset", "on_success", "extra"), [
    ("feather2023", "continue", {}), ("adam", "stop", {}), ("sgd_momentum", "continue", {}),
    # L-BFGS: one optimizer (and its history) per image, and a cosine schedule
    ("adam", "continue", {"optimizer": "lbfgs", "lr": 0.5, "max_iter": 3, "line_search_fn": "strong_wolfe",
                          "schedule": {"type": "cosine", "eta_min": 0.1}}),
    # a per-image schedule that follows the loss: its state is in the checkpoint
    ("adam", "continue", {"schedule": {"type": "reduce_on_plateau", "patience": 5, "factor": 0.5}}),
    # Fourier coefficients: the checkpoint holds them, not the pixels they map to
    ("adam", "stop", {"parameterization": {"type": "fourier", "decay": 1.0}}),
    # coarse to fine: the checkpoint falls between the finer levels' openings (at 15 and 30)
    ("adam", "continue", {"parameterization": {"type": "coarse_to_fine", "levels": 3, "open_every": 15}}),
])
def test_resumed_synthesis_equals_an_uninterrupted_one(lenet, tmp_path, caplog, preset, on_success, extra):
    method = resolve_method(preset, {"iterations": 60, "check_every": 7, "on_success": on_success,
                                     "schedule": {"type": "step_halving", "blocks": 4}, **extra})
    whole = _make(lenet, method).synthesize(progress=False)

    stop = min(33, whole.iterations_run - 2)  # interrupt before the run ends (all images may pass early)
    assert stop > 10
    ckpt = tmp_path / "job.ckpt"
    first = _make(lenet, method)
    _interrupt_at(first, stop)
    with pytest.raises(Preempted):
        first.synthesize(progress=False, checkpoint=ckpt, checkpoint_every=10)
    assert torch.load(ckpt, weights_only=True)["state"]["iteration"] == stop // 10 * 10

    with caplog.at_level(logging.INFO, logger="metamers"):
        resumed = _make(lenet, method).synthesize(progress=False, checkpoint=ckpt, checkpoint_every=10)
    # it did resume (a run that discarded the checkpoint and started over would equal ``whole`` too)
    resumes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("resumed from")]
    assert resumes == [f"resumed from {ckpt} at iteration {stop // 10 * 10}"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "damaged" not in caplog.text and "discarding" not in caplog.text and "afresh" not in caplog.text
    np.testing.assert_array_equal(resumed.metamer, whole.metamer)
    np.testing.assert_array_equal(resumed.loss, whole.loss)
    np.testing.assert_array_equal(resumed.pass_iteration, whole.pass_iteration)
    np.testing.assert_array_equal(resumed.test_iterations, whole.test_iterations)
    np.testing.assert_array_equal(resumed.test_passed, whole.test_passed)
    for name in whole.test_values:
        np.testing.assert_array_equal(resumed.test_values[name], whole.test_values[name])
    assert resumed.iterations_run == whole.iterations_run


def test_a_checkpoint_of_another_synthesis_is_not_resumed(lenet, tmp_path, caplog):
    method = resolve_method("adam", {"iterations": 20})
    ckpt = tmp_path / "job.ckpt"
    other = _make(lenet, method, seed=5)
    _interrupt_at(other, 15)
    with pytest.raises(Preempted):
        other.synthesize(progress=False, checkpoint=ckpt, checkpoint_every=10)
    fresh = _make(lenet, method, seed=1).synthesize(progress=False)
    with caplog.at_level("WARNING"):
        got = _make(lenet, method, seed=1).synthesize(progress=False, checkpoint=ckpt, checkpoint_every=10)
    assert "belongs to another synthesis; starting afresh" in caplog.text
    np.testing.assert_array_equal(got.metamer, fresh.metamer)


def test_a_checkpoint_made_with_other_weights_or_another_version_is_not_resumed(lenet, tmp_path, caplog, monkeypatch):
    import metamers

    method = resolve_method("adam", {"iterations": 20})
    base = _make(lenet, method).fingerprint()
    changed = Classifier(LeNet5(), mean=(0.0,), std=(1.0,), input_shape=(1, 28, 28), num_classes=10, name="lenet")
    changed.load_state_dict(lenet.state_dict())
    assert _make(changed, method).fingerprint() == base  # same weights, same fingerprint
    with torch.no_grad():
        changed.net.conv2.weight[0, 0, 0, 0] += 1e-3  # a weight the layer does not even read
    assert _make(changed, method).fingerprint() != base
    monkeypatch.setattr(metamers, "__version__", "9.9.9")
    assert _make(lenet, method).fingerprint() != base

    monkeypatch.undo()
    ckpt = tmp_path / "job.ckpt"
    first = _make(lenet, method)
    _interrupt_at(first, 15)
    with pytest.raises(Preempted):
        first.synthesize(progress=False, checkpoint=ckpt, checkpoint_every=10)
    fresh = _make(changed, method).synthesize(progress=False)
    with caplog.at_level("WARNING"):
        got = _make(changed, method).synthesize(progress=False, checkpoint=ckpt, checkpoint_every=10)
    assert "belongs to another synthesis; starting afresh" in caplog.text
    np.testing.assert_array_equal(got.metamer, fresh.metamer)
