"""Model metamers: synthesis, evaluation and transfer of stimuli that a network cannot tell apart.

The library's way in (each name is imported on first use, so ``import metamers`` stays light):

- models: :func:`as_model` (any ``nn.Module``), :func:`load_model` (a configured source);
- images: :func:`load_images` (a folder or a named image set);
- the null of the metamer test: :func:`compute_null` -> :class:`Null`;
- metamers: :class:`Metamer` (set up, then :meth:`Metamer.synthesize`) -> :class:`MetamerResult`;
- tests on any images: :func:`metamer_test`, :func:`recognizability`, :func:`compare_representations`.

Example: metamers of ten MNIST test digits at LeNet-5's ``relu2`` (the README's quickstart)::

    import metamers
    model = metamers.load_model({"source": "advertorch", "weights": "clntrained"}, name="lenet5")
    digits = metamers.load_images("mnist_test", per_class=1)
    null = metamers.compute_null(model, "relu2", metamers.load_images("mnist", per_class=150))
    result = metamers.Metamer(digits, model, "relu2", method="adam_cosine", null=null).synthesize()
    print(result.summary())

The workflow (Snakemake, ``metamers[workflow]``) runs whole studies over the same core.
"""

from importlib.metadata import PackageNotFoundError, version

from .lazy import lazy_members

try:
    __version__ = version("metamers")
except PackageNotFoundError:  # a source tree that is not installed: read pyproject.toml
    import re as _re
    from pathlib import Path as _Path

    _pyproject = _Path(__file__).resolve().parents[1] / "pyproject.toml"
    _match = _re.search(r'^version = "([^"]+)"', _pyproject.read_text(), _re.M) if _pyproject.is_file() else None
    __version__ = _match.group(1) if _match else "0.0.0+unknown"

#: Name -> the module that defines it (imported on first use: the workflow imports the package
#: while it builds its DAG, where torch is not needed).
_EXPORTS = {
    "as_model": ".models.wrap", "load_model": ".models.wrap", "relu_modules": ".models.wrap",
    "load_images": ".data.inputs", "InputError": ".data.inputs",
    "compute_null": ".null", "Null": ".null", "WeakNullWarning": ".null",
    "Metamer": ".metamer", "MetamerResult": ".metamer",
    "metamer_test": ".measures", "recognizability": ".measures", "compare_representations": ".measures",
    "METHOD_PRESETS": ".synthesis.methods", "MethodError": ".synthesis.methods",
}

__getattr__, __dir__ = lazy_members(__name__, _EXPORTS)

__all__ = ["InputError", "METHOD_PRESETS", "Metamer", "MetamerResult", "MethodError", "Null", "WeakNullWarning",
           "__version__", "as_model", "compare_representations", "compute_null", "load_images", "load_model",
           "metamer_test", "recognizability", "relu_modules"]
