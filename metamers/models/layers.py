"""Reading intermediate layers of a :class:`~metamers.models.classifier.Classifier`.

A layer is a named module of the network (read with a forward hook) or, for operations
that are not modules (``x + y``, ``torch.flatten``), a torch.fx graph node (read with
torchvision's feature extractor), or the pseudo-layer :data:`INPUT_LAYER` of every model: its
input after its normalisation. The forward pass stops as soon as every requested
layer has produced its output, so reading an early layer costs an early layer's compute.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn as nn

from .classifier import Classifier


#: The pseudo-layer every model has: its input after the model's own normalisation,
#: ``(x - mean) / std`` (:meth:`Classifier.normalize`), the tensor its network receives; the
#: ``input_after_preproc`` of Feather et al. (2023), the first layer of their analyses. (A network
#: that normalises inside itself, with mean 0 and std 1 outside, as RobustBench's models do, has
#: its normalised input as a module of its own: RobustBench's ``normalize``.)
INPUT_LAYER = "input_after_preproc"


def is_input_layer(model: Classifier, layer: str) -> bool:
    """Whether ``layer`` is :data:`INPUT_LAYER` of ``model`` (a module of that name would win)."""
    return layer == INPUT_LAYER and layer not in dict(model.net.named_modules())


class LayerError(KeyError):
    """An unknown layer, or an option a layer does not support."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class _StopForward(Exception):
    """Raised inside a hook once every requested layer is captured."""


class FakeReLU(torch.autograd.Function):
    """ReLU forward, identity backward (the straight-through "fake ReLU" of Feather et al. 2023)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, relu_of_x: torch.Tensor | None = None) -> torch.Tensor:
        """``relu(x)``: ``relu_of_x`` when given (computed already), else ``x`` clamped at 0."""
        return x.clamp(min=0) if relu_of_x is None else relu_of_x.view_as(relu_of_x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        """The identity's gradient for ``x`` (none for ``relu_of_x``)."""
        return grad, None


def fake_relu(x: torch.Tensor, relu_of_x: torch.Tensor | None = None) -> torch.Tensor:
    """ReLU whose gradient passes through unchanged where the input is negative.

    ``relu_of_x``, when given, is ``relu(x)`` already computed (a ReLU module's output): it is
    the value, and no second ReLU pass runs (its own gradient is not used)."""
    return FakeReLU.apply(x, relu_of_x)


def relu_layers(model: Classifier) -> list[str]:
    """Names of the network's ReLU modules (layers where a straight-through ReLU applies)."""
    return [name for name, m in model.net.named_modules() if name and isinstance(m, nn.ReLU)]


def _relu_inputs(module: nn.Module, slot: dict[str, torch.Tensor]) -> list:
    """Forward hooks on the ReLU modules inside ``module`` that keep the input of the latest call."""
    def keep(_m: nn.Module, inputs: tuple, _output) -> None:
        slot["last"] = inputs[0]

    return [m.register_forward_hook(keep) for m in module.modules() if isinstance(m, nn.ReLU) and m is not module]


@torch.no_grad()
def ends_in_relu(model: Classifier, layer: str) -> bool:
    """Whether module ``layer``, not itself a ReLU, returns the output of the last ReLU module it
    runs (a residual stage ``relu(out + identity)``: torchvision's ``layer1`` ... ``layer4``),
    checked on one forward pass of a seeded random image."""
    module = dict(model.net.named_modules()).get(layer)
    if not layer or module is None or isinstance(module, nn.ReLU) or not any(
            isinstance(m, nn.ReLU) for m in module.modules()):
        return False
    slot: dict[str, torch.Tensor] = {}
    captured: dict[str, torch.Tensor] = {}

    def stop(_m: nn.Module, _inputs: tuple, output) -> None:
        captured["out"] = output
        raise _StopForward

    handles = [*_relu_inputs(module, slot), module.register_forward_hook(stop)]
    try:
        x = torch.rand(1, *model.input_shape, generator=torch.Generator().manual_seed(0)).to(model.device)
        model(x)
    except _StopForward:
        pass
    finally:
        for h in handles:
            h.remove()
    out, last = captured.get("out"), slot.get("last")
    return isinstance(out, torch.Tensor) and last is not None and out.shape == last.shape and bool(
        torch.equal(out, last.clamp(min=0)))


def uses_fake_relu(model: Classifier, layer: str, method_setting: bool, layer_setting: bool | None) -> bool:
    """Whether synthesis at ``layer`` uses the straight-through ReLU: the layer's own setting
    when it has one (true needs a ReLU stage, which :class:`LayerReader` checks), else the
    method's, which applies at ReLU stages only, as published: the fake ReLU replaces a ReLU
    module's output, or the last ReLU of a module that ends in one (the ``layer1_fake_relu`` ...
    ``layer4_fake_relu`` of the published ResNets: the residual sum passes its gradient through
    the stage's final ReLU); other layers are matched as they are."""
    if layer_setting is not None:
        return bool(layer_setting)
    if not method_setting:
        return False
    if layer in relu_layers(model) or ends_in_relu(model, layer):
        return True
    if layer not in dict(model.net.named_modules()) and is_functional_relu_node(model, layer):
        raise LayerError(
            f"layer {layer!r} of model {model.name!r} is a ReLU applied as a function (a torch.fx node), which the "
            "method's straight-through ReLU cannot replace; wrap the network with metamers.as_model (which makes "
            "such ReLUs modules), use nn.ReLU modules, or set the layer's fake_relu: false to match it as it is")
    return False


def applies_relu(node) -> bool:
    """Whether torch.fx node ``node`` applies a ReLU as a function or a method (``F.relu``,
    ``torch.relu``, ``x.relu()``, in place or not)."""
    import torch.nn.functional as F

    return (node.op == "call_function" and node.target in (F.relu, torch.relu, torch.relu_, F.relu_)) or (
        node.op == "call_method" and node.target in ("relu", "relu_"))


def is_functional_relu_node(model: Classifier, layer: str) -> bool:
    """Whether ``layer`` is a graph node of ``model``'s network (named as :func:`graph_node_names`
    names it: ``block.relu`` inside ``block``) that applies a ReLU as a function (False when the
    network cannot be traced)."""
    from torchvision.models.feature_extraction import NodePathTracer

    tracer = NodePathTracer()
    try:
        graph = tracer.trace(model.net)
    except Exception:  # noqa: BLE001 - an untraceable network has no graph nodes to read
        return False
    return any(tracer.node_to_qualname.get(n) == layer and applies_relu(n) for n in graph.nodes)


def graph_node_names(model: Classifier) -> list[str]:
    """torch.fx node names of the network in eval mode ([] if it cannot be traced)."""
    from torchvision.models.feature_extraction import get_graph_node_names

    try:
        _, eval_nodes = get_graph_node_names(model.net)
    except Exception:  # noqa: BLE001 - untraceable networks just have no graph nodes
        return []
    return [n for n in eval_nodes if n != "x"]


class LayerReader:
    """Read named layers of a model in one truncated forward pass.

    Parameters
    ----------
    model
        The classifier; inputs are in [0, 1].
    layers
        Module names (see :meth:`Classifier.layer_names`), torch.fx node names, or
        :data:`INPUT_LAYER` (the normalised input, read where the network receives it).
    fake_relu
        Layers among ``layers`` whose ReLU gets an identity backward pass: ReLU modules, or
        modules that end in a ReLU module (:func:`ends_in_relu`, checked once here; the
        straight-through ReLU then replaces that last ReLU).
    stop_early
        Stop the forward pass once every requested layer is read.

    Notes
    -----
    A module applied several times in one forward pass (a shared ReLU, say) is read at
    its first application. Outputs that are tuples keep their first element.
    """

    def __init__(
        self,
        model: Classifier,
        layers: Sequence[str],
        fake_relu: Iterable[str] = (),
        stop_early: bool = True,
    ) -> None:
        if not layers:
            raise LayerError("no layers requested")
        self.model = model
        self.layers = list(dict.fromkeys(layers))
        self.fake_relu = set(fake_relu)
        self.stop_early = stop_early
        modules = dict(model.net.named_modules())
        self._input = INPUT_LAYER in self.layers and INPUT_LAYER not in modules
        inner = [name for name in self.layers if not (self._input and name == INPUT_LAYER)]
        unknown_modules = [name for name in inner if not name or name not in modules]
        self._extractor = None
        if unknown_modules:
            nodes = graph_node_names(model)
            unknown = [name for name in unknown_modules if name not in nodes]
            if unknown:
                raise LayerError(
                    f"model {model.name!r} has no layer(s) {unknown}; valid layers: "
                    f"{', '.join(model.layer_names())}"
                    + (f"; graph nodes: {', '.join(nodes)}" if nodes else "")
                    + f"; and {INPUT_LAYER} (the normalised input)"
                )
            if self.fake_relu:
                raise LayerError(
                    f"fake_relu needs module layers, but {unknown_modules} of model {model.name!r} are torch.fx graph "
                    "nodes; a ReLU applied as a function (F.relu, torch.relu, x.relu()) becomes a module, where the "
                    "straight-through ReLU applies, when the network is wrapped by metamers.as_model "
                    "(metamers.models.wrap.relu_modules)")
            from torchvision.models.feature_extraction import create_feature_extractor

            self._extractor = create_feature_extractor(model.net, return_nodes=inner)
        else:
            self._modules = {name: modules[name] for name in inner}
        self._ending_in_relu = set()
        for name in self.fake_relu:
            if name not in self.layers:
                raise LayerError(f"fake_relu layer {name!r} is not among the layers read: {self.layers}")
            if self._input and name == INPUT_LAYER:
                raise LayerError(f"fake_relu needs a ReLU module or a module that ends in one, but {name!r} of "
                                 f"model {model.name!r} is its normalised input")
            if isinstance(modules.get(name), nn.ReLU):
                continue
            if ends_in_relu(model, name):
                self._ending_in_relu.add(name)
                continue
            relus = relu_layers(model)
            raise LayerError(
                f"fake_relu needs a ReLU module or a module that ends in one, but {name!r} of model {model.name!r} "
                f"is {type(modules.get(name)).__name__}; ReLU layers: {', '.join(relus) or '(none)'}"
            )

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``{layer: activation}`` for input batch ``x`` (values in [0, 1])."""
        if self._extractor is not None:
            z = self.model.normalize(x)
            out = {**self._extractor(z), **({INPUT_LAYER: z} if self._input else {})}
            return {name: out[name] for name in self.layers}
        captured: dict[str, torch.Tensor] = {}
        self._last_relu_input: dict[str, dict[str, torch.Tensor]] = {name: {} for name in self._ending_in_relu}
        handles = [h for name in self._ending_in_relu
                   for h in _relu_inputs(self._modules[name], self._last_relu_input[name])]
        handles += [m.register_forward_hook(self._hook(name, captured)) for name, m in self._modules.items()]
        if self._input:  # what the network receives: the model's normalisation of x
            handles.append(self.model.net.register_forward_pre_hook(self._input_hook(captured)))
        try:
            self.model(x)
        except _StopForward:
            pass
        finally:
            for h in handles:
                h.remove()
        missing = [name for name in self.layers if name not in captured]
        if missing:
            raise LayerError(f"layer(s) {missing} of model {self.model.name!r} were not run by its forward pass")
        return {name: captured[name] for name in self.layers}

    def _input_hook(self, captured: dict[str, torch.Tensor]):
        def hook(_net: nn.Module, inputs: tuple) -> None:
            captured[INPUT_LAYER] = inputs[0]
            if self.stop_early and len(captured) == len(self.layers):
                raise _StopForward

        return hook

    def _hook(self, name: str, captured: dict[str, torch.Tensor]):
        def hook(module: nn.Module, inputs: tuple, output):
            if name in captured:
                return None
            if name in self._ending_in_relu:
                last = self._last_relu_input[name].get("last")
                if last is None or output.shape != last.shape:  # values: checked by ends_in_relu, without a sync
                    raise LayerError(f"layer {name!r} of model {self.model.name!r}: its output is not its last "
                                     "ReLU's, so the straight-through ReLU cannot replace it")
                output = fake_relu(last, output)
            elif name in self.fake_relu:
                output = fake_relu(inputs[0], output)
            captured[name] = output[0] if isinstance(output, (tuple, list)) else output
            if self.stop_early and len(captured) == len(self.layers):
                raise _StopForward
            return output if name in self.fake_relu else None

        return hook


def layer_depth(model: Classifier, layer: str) -> float:
    """A layer's normalized depth: its position among the model's leaf modules (those without
    children, an ``nn.Identity`` or an empty ``nn.Sequential`` too) in definition order,
    ``(index + 1) / count``, so the last leaf (the logits of a feed-forward network) is 1 and the
    input (:data:`INPUT_LAYER`) is 0. A container (a ResNet's ``layer1`` or
    ``layer1.0``) sits at its last leaf, where its output is made; containers are not counted, so
    a network's depth scale does not depend on how its modules are grouped. Unknown layers list
    the valid ones."""
    if is_input_layer(model, layer):
        return 0.0
    names = model.layer_names()
    if layer not in names:
        raise LayerError(f"model {model.name!r} has no layer {layer!r}; valid layers: {', '.join(names)}, "
                         f"{INPUT_LAYER}")
    leaves = [n for n, module in model.net.named_modules() if n and next(module.children(), None) is None]
    inside = [i for i, n in enumerate(leaves) if n == layer or n.startswith(layer + ".")]
    return (inside[-1] + 1) / len(leaves)  # a module without children is a leaf itself
