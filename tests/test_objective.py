"""The synthesis objective over weighted (model, layer) targets, and a loop that steps each
image's own parameter with a closure (so closure-based optimizers work and never couple images)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metamers.data import quantize
from metamers.models import Classifier
from metamers.models.architectures import LeNet5
from metamers.synthesis import MetamerSynthesis, Objective, Target
from metamers.synthesis.losses import normalized_l2
from metamers.synthesis.optimizers import OPTIMIZERS, OptimizerType


def _lenet(seed: int, name: str) -> Classifier:
    torch.manual_seed(seed)
    return Classifier(LeNet5(), mean=(0.0,), std=(1.0,), input_shape=(1, 28, 28), num_classes=10, name=name)


@pytest.fixture(scope="module")
def two():
    return _lenet(0, "a"), _lenet(1, "b")


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_objective_is_the_weighted_sum_of_each_targets_loss(two):
    a, b = two
    ref, x = quantize(_images(3, 0)), _images(3, 1)
    parts = [slice(i, i + 1) for i in range(3)]
    joint = Objective([Target(a, "relu2", weight=0.25), Target(b, "linear2", weight=2.0)], ref, "normalized_l2", parts)
    with torch.no_grad():
        by_hand = 0.25 * normalized_l2(a.net.relu2(a.net.conv2(a.net.maxpool1(a.net.relu1(a.net.conv1(x))))),
                                       a.net.relu2(a.net.conv2(a.net.maxpool1(a.net.relu1(a.net.conv1(ref))))))
        by_hand = by_hand + 2.0 * normalized_l2(b(x), b(ref))
        torch.testing.assert_close(joint.losses(x), by_hand, rtol=1e-5, atol=1e-6)
        # the objective of images 1..2 is that of their own references
        torch.testing.assert_close(joint.losses(x[1:], slice(1, 3)), by_hand[1:], rtol=1e-5, atol=1e-6)


def test_the_test_at_several_targets_passes_only_where_every_target_passes(two):
    a, b = two
    ref = quantize(_images(2, 2))
    # image 0 is its own reference (passes everywhere); image 1 is another image
    xq = torch.cat([ref[:1], quantize(_images(1, 3))])
    parts = [slice(0, 2)]
    easy = Target(a, "relu1", thresholds={"pearson": -1.0})  # every defined correlation passes
    strict = Target(b, "relu1", thresholds={"pearson": 0.999999})
    objective = Objective([easy, strict], ref, "normalized_l2", parts)
    classes = objective.reference_classes()
    ok, values = objective.test(xq, classes, "at_least")
    assert sorted(values) == ["a:relu1:pearson", "b:relu1:pearson"] == sorted(objective.test_names())
    assert values["b:relu1:pearson"][0] == 1.0 and values["b:relu1:pearson"][1] < 0.999999
    a_class_kept = (a(xq).argmax(1) == classes[0]).tolist()
    assert ok.tolist() == [True, False] and a_class_kept[0]
    ok_easy, _ = Objective([easy], ref, "normalized_l2", parts).test(xq, classes[:1], "at_least")
    assert ok_easy.tolist() == [True, a_class_kept[1]]  # the one target alone would pass where its class held


@pytest.fixture
def lbfgs():
    """L-BFGS settings: a closure-based optimizer whose line search evaluates the objective
    several times per step."""
    assert OPTIMIZERS["lbfgs"].per_image is False
    return {"optimizer": "lbfgs", "iterations": 4, "lr": 1.0, "max_iter": 5, "line_search_fn": "strong_wolfe",
            "schedule": {"type": "constant"}, "loss": "normalized_l2", "init": {"type": "noise", "mean": 0.5, "std": 0.05},
            "check_every": 0, "on_success": "continue", "fake_relu": False}


def test_a_closure_based_optimizer_steps_each_image_alone(two, lbfgs):
    a, _ = two
    ref = _images(3, 4)
    ids = ["p", "q", "r"]
    synth = MetamerSynthesis([Target(a, "relu2")], ref, lbfgs, seed=0, image_ids=ids)
    assert len(synth.groups) == 3 and all(len(g.params) == 1 for g in synth.groups)
    calls = []
    losses = synth.objective.losses
    synth.objective.losses = lambda x, images=slice(None): (calls.append(images), losses(x, images))[1]
    out = synth.synthesize(progress=False)
    assert len(calls) > 3 * 4  # the line search evaluated the closure more than once per step
    assert (out.final_loss < 0.5 * out.loss[:, 0]).all()
    for i in range(3):  # never coupled: each image's metamer is the one it gets alone
        alone = MetamerSynthesis([Target(a, "relu2")], ref[i : i + 1], lbfgs, seed=0,
                                 image_ids=ids[i : i + 1]).synthesize(progress=False)
        np.testing.assert_array_equal(alone.metamer[0], out.metamer[i])
    # ... whatever the batch's passes: a joint optimizer always gets one optimizer per image
    batched = MetamerSynthesis([Target(a, "relu2")], ref, lbfgs, seed=0, image_ids=ids, batch_invariant=False)
    assert len(batched.groups) == 3 and [g.parts for g in batched.groups] == [[g.images] for g in batched.groups]
    # one L-BFGS over every image (declared per_image, wrongly): its line search couples them
    joint = OptimizerType("torch.optim:LBFGS", ("lr", "max_iter", "line_search_fn"), (), (), True,  # not per image
                          param_groups=False)
    with OPTIMIZERS.override("lbfgs_joint", joint):
        coupled = MetamerSynthesis([Target(a, "relu2")], ref, {**lbfgs, "optimizer": "lbfgs_joint"}, seed=0,
                                   image_ids=ids)
        assert len(coupled.groups) == 1
        coupled = coupled.synthesize(progress=False)
    assert not np.allclose(coupled.metamer, out.metamer, atol=1e-3)


@pytest.mark.parametrize("batch_invariant", [True, False])
def test_a_per_image_optimizer_steps_every_image_at_once(two, batch_invariant):
    """Adam updates each parameter from its own gradient: one optimizer steps every image, while
    the passes through the network stay one image at a time (batch-invariant) or one batch."""
    from metamers.synthesis import resolve_method

    a, _ = two
    synth = MetamerSynthesis([Target(a, "relu1")], _images(3, 5), resolve_method("adam", {"iterations": 3}), seed=0,
                             batch_invariant=batch_invariant)
    (group,) = synth.groups
    assert len(group.params) == 3 and group.params == synth.params
    assert group.parts == ([slice(0, 1), slice(1, 2), slice(2, 3)] if batch_invariant else [slice(0, 3)])
