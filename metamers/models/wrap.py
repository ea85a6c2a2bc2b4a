"""Any ``nn.Module`` as a :class:`~.classifier.Classifier`: the library's way in for a model of one's own.

:func:`as_model` wraps a network with the normalisation and input shape it expects, infers its
number of classes, and makes every ReLU it applies as a function (``F.relu``, ``torch.relu``,
``x.relu()``) a module of its own (:func:`relu_modules`, a torch.fx rewrite), so that a method's
straight-through ReLU (:func:`~.layers.uses_fake_relu`) reaches it as it reaches ``nn.ReLU`` modules.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .classifier import Classifier

#: What torch.fx records for a ReLU applied as a function or a method.
_RELU_FUNCTIONS = (F.relu, torch.relu, torch.relu_, F.relu_)
_RELU_METHODS = ("relu", "relu_")


def _trace(net: nn.Module):
    import torch.fx

    return torch.fx.symbolic_trace(net)


def functional_relus(net: nn.Module) -> list[str]:
    """The torch.fx node names of the ReLUs ``net`` applies as functions or methods ([] when it
    applies none, or cannot be traced)."""
    try:
        graph = _trace(net).graph
    except Exception:  # noqa: BLE001 - a network torch.fx cannot trace has no graph to rewrite
        return []
    return [n.name for n in graph.nodes if _is_functional_relu(n)]


def _is_functional_relu(node) -> bool:
    return (node.op == "call_function" and node.target in _RELU_FUNCTIONS) or (
        node.op == "call_method" and node.target in _RELU_METHODS)


def relu_modules(net: nn.Module) -> nn.Module:
    """``net`` with each ReLU it applies as a function replaced by an ``nn.ReLU`` module named after
    its torch.fx node (``relu``, ``relu_1``, ...: the layer names of those graph nodes), so that a
    straight-through ReLU can replace it; ``net`` itself when it applies none.

    The rewritten network computes the same values (the same operations, not in place); its
    top-level modules are ordered by first use in the forward pass, which is the order that
    :func:`~.layers.layer_depth` reads.

    Raises
    ------
    TypeError
        ``net`` applies ReLUs as functions but torch.fx cannot trace it (data-dependent control
        flow, say); the message gives torch.fx's reason and the remedy (use ``nn.ReLU`` modules).

    Examples
    --------
    >>> import torch.nn as nn, torch.nn.functional as F
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1, self.fc2 = nn.Linear(4, 3), nn.Linear(3, 2)
    ...     def forward(self, x):
    ...         return self.fc2(F.relu(self.fc1(x)))
    >>> [name for name, _ in relu_modules(Net()).named_children()]
    ['fc1', 'relu', 'fc2']
    """
    import torch.fx

    try:
        traced = _trace(net)
    except Exception as err:  # noqa: BLE001 - torch.fx raises many kinds of error
        if _applies_relu_functionally(net):
            raise TypeError(
                f"the network applies ReLUs as functions, and torch.fx cannot trace it to make them modules "
                f"({type(err).__name__}: {err}); use nn.ReLU modules for the straight-through ReLU") from None
        return net
    nodes = [n for n in traced.graph.nodes if _is_functional_relu(n)]
    if not nodes:
        return net
    taken = {name for name, _ in traced.named_modules()}
    for node in nodes:
        name = node.name
        while name in taken:
            name += "_"
        taken.add(name)
        traced.add_submodule(name, nn.ReLU())
        with traced.graph.inserting_after(node):
            new = traced.graph.call_module(name, (node.args[0],))
        node.replace_all_uses_with(new)
        traced.graph.erase_node(node)
    traced.graph.lint()
    traced.recompile()
    order = [str(n.target).split(".")[0] for n in traced.graph.nodes if n.op in ("call_module", "get_attr")]
    children = traced._modules
    ordered = OrderedDict((name, children[name]) for name in dict.fromkeys(order) if name in children)
    ordered.update((name, m) for name, m in children.items() if name not in ordered)
    traced._modules = ordered
    assert isinstance(traced, torch.fx.GraphModule)
    return traced


def _applies_relu_functionally(net: nn.Module) -> bool:
    """Whether the source of ``net``'s forward calls a ReLU function (for the error of an untraceable net)."""
    import inspect

    try:
        source = inspect.getsource(type(net).forward)
    except (OSError, TypeError):
        return False
    return any(f in source for f in ("F.relu", "torch.relu", ".relu(", "functional.relu"))


def as_model(
    net: nn.Module,
    input_shape: Sequence[int] | None = None,
    mean: Sequence[float] = (0.0,),
    std: Sequence[float] = (1.0,),
    num_classes: int | None = None,
    name: str = "model",
    device: str | torch.device | None = None,
) -> Classifier:
    """A network as the frozen :class:`~.classifier.Classifier` that synthesis and the tests take.

    Parameters
    ----------
    net
        Any ``nn.Module`` mapping a batch of normalised images to logits; a :class:`Classifier`
        is returned as it is (moved to ``device`` when given).
    input_shape
        ``(channels, height, width)`` of the images the network takes.
    mean, std
        The per-channel normalisation the network expects, applied to images in [0, 1]
        (default none: the network takes [0, 1] itself).
    num_classes
        Length of the logits (default: read from one forward pass of a grey image).
    name
        The name the model goes by in tables, artifacts and messages.
    device
        Where the model runs (default: where its parameters are).

    Raises
    ------
    TypeError
        ``net`` is not an ``nn.Module``.
    ValueError
        ``input_shape`` is missing or not three positive sizes, or the network's output is not
        ``(batch, classes)`` logits.

    Examples
    --------
    >>> import torch.nn as nn
    >>> from metamers import as_model
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    >>> model = as_model(net, input_shape=(1, 28, 28), mean=(0.1307,), std=(0.3081,), name="linear")
    >>> model.num_classes, model.input_shape
    (10, (1, 28, 28))
    """
    if isinstance(net, Classifier):
        return net.to(device) if device is not None else net
    if not isinstance(net, nn.Module):
        raise TypeError(f"as_model takes a torch.nn.Module, got {type(net).__name__}")
    if input_shape is None or len(tuple(input_shape)) != 3 or not all(int(s) > 0 for s in input_shape):
        raise ValueError(f"as_model needs input_shape=(channels, height, width), the size of the images the network "
                         f"takes (for example (3, 32, 32)); got {input_shape!r}")
    shape = tuple(int(s) for s in input_shape)
    if device is None:
        first = next(iter(net.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    net = relu_modules(net)
    model = Classifier(net, mean, std, shape, 1 if num_classes is None else num_classes, name).to(device)
    with torch.no_grad():
        out = model(torch.full((1, *shape), 0.5, device=model.device))
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 1:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"model {name!r}: the network's output is {got}; expected logits of shape (1, classes) "
                         "for one image")
    if num_classes is None:
        model.num_classes = int(out.shape[1])
    elif out.shape[1] != num_classes:
        raise ValueError(f"model {name!r}: num_classes is {num_classes}, but the network gives {out.shape[1]} logits")
    return model


def load_model(spec: dict, name: str = "model", device: str | torch.device = "cpu") -> Classifier:
    """A model from a configured source, as a config's ``models`` entry names it: ``{"source":
    "advertorch", "weights": "clntrained"}`` (advertorch's MNIST LeNet-5), torchvision, timm,
    RobustBench, a local checkpoint (:data:`metamers.models.sources.SOURCES`). The one-model form
    of :func:`metamers.models.loading.load_model`.

    Examples
    --------
    >>> from metamers import load_model
    >>> lenet = load_model({"source": "advertorch", "weights": "clntrained"}, name="lenet5")
    >>> lenet.input_shape, lenet.num_classes
    ((1, 28, 28), 10)
    """
    from .loading import load_model as load_configured

    if not isinstance(spec, dict) or "source" not in spec:
        raise TypeError(f"a model spec is a dict naming its source, for example {{'source': 'advertorch', 'weights': "
                        f"'clntrained'}}; got {spec!r} (for a network of your own: metamers.as_model)")
    return load_configured({name: spec}, name, device)
