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
from .layers import applies_relu

class RewriteWarning(UserWarning):
    """A module applies ReLUs as functions but torch.fx cannot trace it: they stay functions."""


def _own_graph(module: nn.Module):
    """The torch.fx graph of ``module``'s own forward, every child module a leaf (called, not traced into)."""
    import torch.fx

    class OwnOps(torch.fx.Tracer):
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:  # noqa: ARG002
            return True

    return OwnOps().trace(module)


def _in_place(node) -> bool:
    """Whether the ReLU of ``node`` overwrites its input (``relu_``, ``F.relu(x, inplace=True)``)."""
    if node.target in (torch.relu_, F.relu_, "relu_"):
        return True
    return node.target is F.relu and bool(node.kwargs.get("inplace", node.args[1] if len(node.args) > 1 else False))


def _calls_relu_function(module: nn.Module) -> bool:
    """Whether the source of ``module``'s forward names a ReLU function (for a module torch.fx cannot trace)."""
    import inspect
    import re

    try:
        source = inspect.getsource(type(module).forward)
    except (OSError, TypeError):
        return False
    return bool(re.search(r"\b(F|functional|torch)\.relu_?\(|\)\.relu_?\(|\b(?!self\b)\w+\.relu_?\(\)", source))


def _rewrite(module: nn.Module, path: str) -> nn.Module:
    """``module`` with the ReLUs of its own forward as ``nn.ReLU`` children (itself when it has none)."""
    import torch.fx

    if type(module).__module__.startswith("torch.nn."):  # torch's own layers (nn.ReLU calls F.relu itself)
        return module
    try:
        graph = _own_graph(module)
    except Exception as err:  # noqa: BLE001 - torch.fx raises many kinds of error
        if _calls_relu_function(module):
            import warnings

            warnings.warn(f"module {path or '(the network)'!r} ({type(module).__name__}) applies ReLUs as functions, "
                          f"and torch.fx cannot trace it ({type(err).__name__}: {err}); they stay functions, where "
                          "the straight-through ReLU cannot apply (use nn.ReLU modules)", RewriteWarning, stacklevel=3)
        return module
    nodes = [n for n in graph.nodes if applies_relu(n)]
    if not nodes:
        return module
    order = {n: i for i, n in enumerate(graph.nodes)}
    taken = {name for name, _ in module.named_children()} | {name for name, _ in module.named_parameters(recurse=False)} \
        | {name for name, _ in module.named_buffers(recurse=False)} | set(vars(module))
    added = {}
    for node in nodes:
        name = node.name
        while name in taken:
            name += "_"
        taken.add(name)
        added[name] = nn.ReLU()
        source = node.args[0]
        with graph.inserting_after(node):
            new = graph.call_module(name, (source,))
        if _in_place(node):  # later reads of the overwritten tensor read the ReLU's output
            for user in list(source.users):
                if user is not node and user is not new and order.get(user, -1) > order[node]:
                    user.replace_input_with(source, new)
        node.replace_all_uses_with(new)
        graph.erase_node(node)
    holder = nn.Module()
    for name, child in module.named_children():
        holder.add_module(name, child)
    for name, relu in added.items():
        holder.add_module(name, relu)
    for name, param in module.named_parameters(recurse=False):
        holder.register_parameter(name, param)
    for name, buffer in module.named_buffers(recurse=False):
        holder.register_buffer(name, buffer)
    graph.lint()
    rewritten = torch.fx.GraphModule(holder, graph, class_name=type(module).__name__)
    # every child (used or not, so the state dict keeps its names), in the order the forward runs them
    ran = [str(n.target).split(".")[0] for n in graph.nodes if n.op in ("call_module", "get_attr")]
    children = OrderedDict((name, holder._modules[name]) for name in dict.fromkeys(ran) if name in holder._modules)
    children.update((name, m) for name, m in holder._modules.items() if name not in children)
    rewritten._modules = children
    for name, param in module.named_parameters(recurse=False):
        if name not in rewritten._parameters:
            rewritten.register_parameter(name, param)
    for name, buffer in module.named_buffers(recurse=False):
        if name not in rewritten._buffers:
            rewritten.register_buffer(name, buffer)
    return rewritten


def relu_modules(net: nn.Module) -> nn.Module:
    """``net`` with each ReLU that a module applies as a function (``F.relu``, ``torch.relu``,
    ``x.relu()``, in place or not) replaced by an ``nn.ReLU`` child of that module named after its
    torch.fx node (``relu``, ``relu_1``, ...; ``block.relu`` inside ``block``), so that a
    straight-through ReLU can replace it; ``net`` itself when no module applies one.

    Each module is rewritten on its own, its children called as they are, so modules without
    functional ReLUs keep their class and code, and every parameter, buffer and child keeps its
    name (the state dict is unchanged). A rewritten module computes the same values (the same
    operations; an in-place ReLU's later readers read its output); its children are ordered by
    first use in its forward, the order that :func:`~.layers.layer_depth` reads. The network is
    traced in eval mode (the mode :func:`~.classifier.freeze` leaves it in). A module torch.fx
    cannot trace keeps its functional ReLUs, with a :class:`RewriteWarning`.

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
    net.eval()
    for path, module in sorted(net.named_modules(), key=lambda item: -item[0].count(".") if item[0] else 1):
        if path == "":
            continue
        rewritten = _rewrite(module, path)
        if rewritten is not module:
            parent_path, _, name = path.rpartition(".")
            parent = net.get_submodule(parent_path) if parent_path else net
            parent._modules[name] = rewritten
    return _rewrite(net, "")


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
