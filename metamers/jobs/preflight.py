"""The pre-flight check: everything a study needs, checked once before any job starts.

A config can name a layer a model does not have, a model whose weight file is not on
disk, or an image set holding an unreadable file, and still pass the workflow's dry run;
without this check the error would come only when the first job reaches it, after hours
of other jobs. :func:`preflight` checks, cheaply and on the CPU:

* every generator and evaluator model: its weight files exist, and it loads;
* every generator layer: the model has it (``fake_relu`` layers are ReLU modules), and a
  forward pass of one zero input reaches it;
* the reference image set and the null pool (configured, or the references' training pool):
  they list, every reference image and a sample of the pool's reads and converts to the
  input shape of every generator and evaluator, and the pool has the null's pairs;
* every evaluator: it has more classes than the largest label of the reference set.

It collects every problem rather than stopping at the first. :func:`run_preflight` writes
a report of what was checked when nothing is wrong, and raises :class:`PreflightError`
listing every problem otherwise.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts.files import atomic_path
from ..data import (
    ImageError,
    ImageSet,
    as_tensor,
    default_pool,
    load_image_set,
    to_input,
)
from ..data.image_set import ImageListError
from ..labels import decides_through_map, image_label_space, load_class_map, model_label_space
from ..models.loading import load_model, weight_files
from ..models.sources import ModelLoadError
from ..stats.pairs import weak_null_reason

log = logging.getLogger(__name__)

#: Sources whose loader, given a missing weight file, says where to put it (added to the problem).
_GUIDED_SOURCES = ("torchvision", "robustbench")


class PreflightError(ValueError):
    """The pre-flight check found problems; the message lists every one."""


@dataclass
class PreflightResult:
    """What :func:`check_study` found: the problems, and a description of what was checked."""

    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    #: What can run but weakens the study (a weak null); reported, not refused.
    warnings: list[str] = field(default_factory=list)


def _message(err: BaseException) -> str:
    """The text of an error, without the quotes :class:`KeyError` adds; unexpected error types
    are named."""
    from ..models.layers import LayerError

    if isinstance(err, (ModelLoadError, ImageError, LayerError)):
        return str(err)
    if isinstance(err, KeyError) and err.args and isinstance(err.args[0], str):
        return err.args[0]
    return f"{type(err).__name__}: {err}"


def _model_problem(name: str, text: str) -> str:
    """``model 'name': text``, unless ``text`` already starts by naming the model."""
    return text if text.startswith(f"model {name!r}") else f"model {name!r}: {text}"


def _without_model_prefix(name: str, text: str) -> str:
    prefix = f"model {name!r}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _check_model(
    config: Mapping[str, Any], name: str, result: PreflightResult
) -> Any | None:
    """Check the weight files of model ``name`` and load it on the CPU; ``None`` if it fails."""
    models = config["models"]
    source = models.get(name, {}).get("source")
    generators = [m for gen in config["generators"] for m in config.generator_models(gen)]
    roles = [r for r, members in (("generator", generators), ("evaluator", config["evaluators"])) if name in members]
    if source == "train":
        return _check_trained_model(config, name, roles, result)
    try:
        files = weight_files(models, name)
    except Exception as err:  # noqa: BLE001 - loading would fail the same way; report and go on
        result.problems.append(_model_problem(name, _message(err)))
        return None
    missing = [p for p in files if not p.is_file()]
    if missing:
        guidance = ""
        if source in _GUIDED_SOURCES:
            try:
                load_model(models, name, "cpu")
            except Exception as err:  # noqa: BLE001 - every failure is reported
                text = _message(err)
                if any(str(p) in text for p in missing):
                    guidance = "; " + _without_model_prefix(name, text)
                else:
                    result.problems.append(_model_problem(name, text))
        result.problems.extend(
            f"model {name!r}: weight file {str(p)!r} does not exist{guidance}" for p in missing
        )
        return None
    try:
        model = load_model(models, name, "cpu")
    except Exception as err:  # noqa: BLE001 - every failure is reported
        result.problems.append(_model_problem(name, _message(err)))
        return None
    result.checked.append(
        f"  {name} ({source}; {', '.join(roles)}): input {tuple(model.input_shape)}, "
        f"{model.num_classes} classes"
    )
    result.checked.extend(f"    weight file {p}" for p in files)
    return model


def _check_trained_model(config: Mapping[str, Any], name: str, roles: Sequence[str], result: PreflightResult
                         ) -> Any | None:
    """A model the workflow trains: its training set is on disk, and its architecture (the
    checkpoint when it exists, else the untrained network of its seed) has what is checked."""
    from ..data.training_sets import TRAINING_SETS
    from ..models.sources.train import untrained
    from ..models.training_settings import resolve_training

    spec = config["models"][name]
    try:
        settings = resolve_training(name, spec)
        data = dict(settings["data"])
        files = TRAINING_SETS[data.pop("type")].files(data)
    except Exception as err:  # noqa: BLE001 - every failure is reported
        result.problems.append(_model_problem(name, _message(err)))
        return None
    absent = [str(p) for p in files if not p.exists()]
    if absent:
        result.problems.append(f"model {name!r}: training set {settings['data']['type']!r} is not on disk: "
                               f"{', '.join(absent)}")
        return None
    result.problems.extend(_training_count_problems(name, settings))
    path = Path(spec["path"])
    try:
        model = load_model(config["models"], name, "cpu") if path.is_file() else untrained(name, spec)
    except Exception as err:  # noqa: BLE001 - every failure is reported
        result.problems.append(_model_problem(name, _message(err)))
        return None
    result.checked.append(
        f"  {name} (train, {settings['architecture']}, {settings['training']['style']}, seed {settings['seed']}; "
        f"{', '.join(roles)}): input {tuple(model.input_shape)}, {model.num_classes} classes; checkpoint {path} "
        f"({'exists' if path.is_file() else 'written by rule train_model'}); training set "
        f"{', '.join(str(p) for p in files)}")
    return model


def _training_count_problems(name: str, settings: Mapping[str, Any]) -> list[str]:
    """``training.train_images`` and ``evaluation.images`` of a trained model that ask for more
    images than its training set has (each named by its key)."""
    from ..data.training_sets import load_training_set

    try:
        data = load_training_set(settings["data"])
    except Exception as err:  # noqa: BLE001 - every failure is reported
        return [_model_problem(name, _message(err))]
    asked = [("training.train_images", settings["training"].get("train_images"), len(data.train_y), "training"),
             ("evaluation.images", settings["evaluation"].get("images"), len(data.test_y), "held-out test")]
    return [f"models.{name}.{key}: {n} images requested, but training set {settings['data']['type']!r} has {have} "
            f"{kind} images; set it to at most {have} (or null: all)"
            for key, n, have, kind in asked if n is not None and int(n) > have]


def _check_layers(config: Mapping[str, Any], name: str, loaded: Mapping[str, Any], result: PreflightResult
                  ) -> list[str]:
    """Check every configured layer of generator ``name`` (every member's, for a joint
    generator): one forward pass of a zero input each; and that a method which forms a Jacobian
    row per matched value (``gauss_newton``) is given no layer wider than its ``max_outputs``."""
    import torch

    from ..models.layers import LayerReader, uses_fake_relu
    from ..synthesis.gauss_newton import MAX_OUTPUTS, TooManyOutputs, check_outputs
    from ..synthesis.methods import resolve_method
    from ..synthesis.optimizers import OPTIMIZERS

    residual_methods = {}  # method -> its max_outputs, for the methods that step a residual
    straight_through = False  # whether some method asks for the straight-through ReLU
    for method, entry in config["methods"].items():
        settings = resolve_method(method, entry)
        straight_through |= bool(settings.get("fake_relu", True))
        if OPTIMIZERS[settings["optimizer"]].residual:
            residual_methods[method] = int(settings.get("max_outputs", MAX_OUTPUTS))
    ok = []
    for layer in config.generator_layers(name):
        targets = config.generator_targets(name, layer)
        fine, sizes = [], []
        for t in targets:
            model = loaded[t.model]
            fake = bool(t.fake_relu)
            where = f"generator {name!r}, layer {layer!r}" + (
                f" (member {t.model!r}, layer {t.layer!r})" if config.is_joint(name) else "")
            try:
                uses_fake_relu(model, t.layer, straight_through, t.fake_relu)  # refuses a functional ReLU node
                reader = LayerReader(model, [t.layer], fake_relu=[t.layer] if fake else [])
                with torch.no_grad():
                    sizes.append((f"{t.model}/{t.layer}", int(reader(torch.zeros(1, *model.input_shape))[t.layer].numel())))
            except Exception as err:  # noqa: BLE001 - every failure is reported
                result.problems.append(f"{where}: {_message(err)}")
            else:
                fine.append(f"{t.layer} (fake_relu)" if fake else t.layer)
        for method, max_outputs in residual_methods.items() if len(sizes) == len(targets) else ():
            try:
                check_outputs(sizes, max_outputs)
            except TooManyOutputs as err:
                result.problems.append(f"method {method!r}, generator {name!r}, layer {layer!r}: {err}")
        if len(fine) == len(targets):
            ok.append(fine[0] if not config.is_joint(name) else
                      f"{layer} ({', '.join(f'{t.model}/{f}' for t, f in zip(targets, fine))})")
    return ok


#: At most this many null-pool images are read by the pre-flight check (a seeded sample of a
#: larger pool: a published-size pool of 400,000 photographs would take minutes on every run).
POOL_IMAGES_CHECKED = 1000


def _check_images(
    key: str, cfg: Mapping[str, Any], models: Mapping[str, Any], result: PreflightResult, limit: int | None = None,
) -> ImageSet | None:
    """List image set ``cfg``, read every image once (or a seeded sample of ``limit`` of them)
    and convert it to every model's input shape.

    Problems start with ``key`` (``images``, ``metamer_test.pool``); an image that
    :func:`~metamers.data.pixels.read_image_file` refuses (transparent pixels, samples without a
    known range) is a problem naming its file, and a conversion error is reported once per model.
    A set that lists only with a problem (two files with one id) is reported and its every file
    still read. Returns the set (the partial one then), or ``None`` when it cannot be listed.
    """
    try:
        image_set = load_image_set(cfg)
    except Exception as err:  # noqa: BLE001 - every failure is reported
        result.problems.append(f"{key}: {_message(err)}")
        if not isinstance(err, ImageListError):
            return None
        image_set = err.partial
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for name, model in models.items():
        by_shape.setdefault(tuple(int(s) for s in model.input_shape), []).append(name)
    failed_shapes: set[tuple[int, ...]] = set()
    unreadable = 0
    ids = image_set.ids
    if limit is not None and len(ids) > limit:
        import numpy as np

        ids = [ids[i] for i in np.sort(np.random.default_rng(0).choice(len(ids), limit, replace=False))]
    for image_id in ids:
        try:
            x = as_tensor(image_set.pixels(image_id))
        except Exception as err:  # noqa: BLE001 - every unreadable image is reported
            unreadable += 1
            result.problems.append(f"{key}: image {image_id!r}: {_message(err)}")
            continue
        for shape, names in by_shape.items():
            if shape in failed_shapes:
                continue
            try:
                to_input(x, shape)
            except Exception as err:  # noqa: BLE001 - reported once per (image set, model)
                failed_shapes.add(shape)
                result.problems.extend(
                    f"{key}: image {image_id!r} (and maybe others) does not convert to the input "
                    f"{shape} of model {name!r}: {_message(err)}"
                    for name in names
                )
    labels = sorted(set(image_set.labels.values()))
    result.checked.append(
        f"  {key}: {image_set.name}: {len(ids) - unreadable} of {len(ids)} images read"
        f"{f' (a sample of its {len(image_set.ids)})' if len(ids) < len(image_set.ids) else ''}, "
        f"labels {labels[0] if labels else '-'}..{labels[-1] if labels else '-'}, "
        f"converted to {', '.join(str(s) for s in by_shape) or '(no model)'}"
    )
    return image_set


def check_study(config: Mapping[str, Any]) -> PreflightResult:
    """Run every pre-flight check of :func:`preflight`; return the problems and what was checked.

    Parameters
    ----------
    config
        A validated config (:func:`metamers.config.validate_config`).

    Returns
    -------
    PreflightResult
        ``problems``: one line per problem, naming the thing; ``checked``: report lines.
    """
    result = PreflightResult()
    result.checked.append("models:")
    loaded: dict[str, Any] = {}
    for name in config.study_models():
        before = len(result.problems)
        model = _check_model(config, name, result)
        if model is not None:
            loaded[name] = model
        found = len(result.problems) - before
        log.info("pre-flight: model %s: %s", name, f"{found} problem(s)" if found else "ok")

    result.checked.append("generator layers (a forward pass reaches each):")
    for name in config["generators"]:
        if any(m not in loaded for m in config.generator_models(name)):
            continue
        before = len(result.problems)
        ok = _check_layers(config, name, loaded, result)
        result.checked.append(f"  {name}: {', '.join(ok) or '(none)'}")
        found = len(result.problems) - before
        log.info("pre-flight: generator %s layers: %s", name, f"{found} problem(s)" if found else "ok")

    _check_diversity_spaces(config, loaded, result)

    result.checked.append("images:")
    sets = [("images", config["images"])]
    pool = (config.get("metamer_test") or {}).get("pool")
    if pool is not None:
        sets.append(("metamer_test.pool", pool))
    elif default_pool(config["images"]) is not None:  # the reference set's declared training pool
        sets.append(("metamer_test.pool (default)", default_pool(config["images"])))
    reference = None
    for key, cfg in sets:
        before = len(result.problems)
        image_set = _check_images(key, cfg, loaded, result, None if key == "images" else POOL_IMAGES_CHECKED)
        if key == "images":
            reference = image_set
        found = len(result.problems) - before
        log.info("pre-flight: %s: %s", key, f"{found} problem(s)" if found else "ok")

    settings = config.get("metamer_test") or {}
    if reference is not None and "n_pairs" in settings:  # enough pool images for the null's pairs
        from ..data.pools import pool_images
        from ..stats.pairs import NullError

        try:
            _, pool_ids = pool_images(config["images"], settings.get("pool"), reference.ids, settings["n_pairs"],
                                      settings.get("pair_sampling", "all_pairs"))
            result.checked.append(f"null pool: {len(pool_ids)} images for {settings['n_pairs']} pairs")
            weak = weak_null_reason(len(pool_ids), settings["n_pairs"])
            if weak is not None:
                result.warnings.append(
                    f"metamer_test: the null is weak: {weak}; its threshold sets a low bar, so metamers may pass "
                    "that a stronger null would reject (null_thresholds.csv flags it: weak_null); use a larger "
                    "metamer_test.pool or metamer_test.n_pairs")
        except NullError as err:
            result.problems.append(f"metamer_test.n_pairs: {err}; lower n_pairs or give a larger metamer_test.pool")
        except Exception:  # noqa: BLE001 - an unreadable pool is reported above
            pass
        if (config.get("representation") or {}).get("baseline", True):  # a pool image per reference, same class
            from ..data.pools import baseline_images

            try:
                baseline_images(config["images"], settings.get("pool"), reference.ids,
                                [reference.labels[i] for i in reference.ids], int(config.get("seed", 0)))
                result.checked.append("natural-image baseline: a pool image of each reference's class")
            except NullError as err:
                result.problems.append(f"representation.baseline: {err}; give a larger metamer_test.pool or set "
                                       "representation.baseline: false")
            except Exception:  # noqa: BLE001 - an unreadable pool is reported above
                pass

    if reference is not None and reference.labels:
        top = max(reference.labels.values())
        result.checked.append(f"evaluators (more classes than the largest label, {top}) and class maps:")
        for name in config.study_models():
            model = loaded.get(name)
            if model is None or _check_class_map(config, name, model, reference, result):
                continue
            if name not in config["evaluators"]:
                continue  # a generator's class test compares its own classes
            if model.num_classes <= top:
                result.problems.append(
                    f"evaluator {name!r} has {model.num_classes} classes but image labels go up to {top}"
                )
            else:
                result.checked.append(f"  {name}: {model.num_classes} classes")
    _check_evaluator_layers(config, loaded, result)
    from ..stats.quality import check_packages

    try:  # the image-quality table's packages and model files
        check_packages()
        result.checked.append("image quality: NIQE's and BRISQUE's models and piq found")
    except (ImportError, ValueError) as err:
        result.problems.append(f"image quality: {_message(err)}")
    return result


def _check_diversity_spaces(config: Mapping[str, Any], loaded: dict[str, Any], result: PreflightResult) -> None:
    """Every method's diversity space ``{model, layer}``: the model loads, a forward pass reaches
    the layer, and no generator layer of the study matches it (its members would have to both
    match it and differ in it)."""
    import torch

    from ..models.layers import LayerReader

    spaces = [(m, config.diversity_model(m)) for m in config["methods"] if config.diversity_model(m)]
    if spaces:
        result.checked.append("diversity spaces (a forward pass reaches each; no generator matches it):")
    for method, name in spaces:
        layer = config.method_settings(method)["diversity"]["space"]["layer"]
        key = f"methods.{method}.diversity.space"
        model = loaded.get(name) or _check_model(config, name, result)
        if model is None:
            continue
        loaded[name] = model
        try:
            with torch.no_grad():
                LayerReader(model, [layer])(torch.zeros(1, *model.input_shape))
        except Exception as err:  # noqa: BLE001 - every failure is reported
            result.problems.append(f"{key}: {_message(err)}")
            continue
        clash = [f"{g}/{g_layer}" for g in config["generators"] for g_layer in config.generator_layers(g)
                 if any(t.model == name and t.layer == layer for t in config.generator_targets(g, g_layer))]
        if clash:
            result.problems.append(f"{key}: {name}/{layer} is matched by generator layer(s) {clash}, whose metamers "
                                   "cannot both match it and differ in it; choose another layer or model (or pixels)")
        else:
            result.checked.append(f"  {method}: {name}/{layer}")


def _check_class_map(config: Mapping[str, Any], name: str, model: Any, reference: Any, result: PreflightResult
                     ) -> bool:
    """Whether model ``name`` (a generator or an evaluator) decides through a class map; if so,
    the map must be readable and fit the model's classes (else a problem naming the model)."""
    if not decides_through_map(config, name):
        return False
    try:
        cmap = load_class_map(config, reference.class_index)
        if len(cmap.target) != model.num_classes:
            raise ValueError(f"class map {cmap.path!r} is for {len(cmap.target)} classes, the model has "
                             f"{model.num_classes}")
    except Exception as err:  # noqa: BLE001 - every failure is reported
        result.problems.append(f"model {name!r}: {_message(err)}")
    else:
        result.checked.append(f"  {name}: {model.num_classes} classes ({model_label_space(config, name)}), decided "
                              f"in {image_label_space(config)} through {cmap.path} ({len(cmap.mapped)} classes mapped)")
    return True


def _check_evaluator_layers(config: Mapping[str, Any], loaded: Mapping[str, Any], result: PreflightResult) -> None:
    """Every layer of every evaluator that the representation test reads or the inversions invert
    and that no generator matches (those are checked, and reported, as generator layers): one
    forward pass of a zero input."""
    import torch

    from ..models.layers import LayerReader

    matched = config.null_targets(list(config["generators"]))
    inverted = config.inversion_layers()
    result.checked.append("evaluator layers of the representation test (and of the inversions):")
    for name, entry in config["evaluators"].items():
        model = loaded.get(name)
        layers = list(dict.fromkeys([*entry["layers"], *inverted.get(name, [])]))
        if model is None or not layers:
            if model is not None:
                result.checked.append(f"  {name}: none (it only classifies)")
            continue
        own = [layer for layer in layers if layer not in matched.get(name, [])]
        try:
            if own:
                with torch.no_grad():
                    LayerReader(model, own)(torch.zeros(1, *model.input_shape))
        except Exception as err:  # noqa: BLE001 - every failure is reported
            result.problems.append(f"evaluator {name!r}, layers {own}: {_message(err)}")
        else:
            inv = f"; inverted at {', '.join(inverted[name])}" if inverted.get(name) else ""
            result.checked.append(f"  {name}: {', '.join(entry['layers']) or 'none'}{inv}")


def preflight(config: Mapping[str, Any]) -> list[str]:
    """Check that a study can run: models, weight files, layers, images, evaluator classes.

    Every generator and evaluator model is loaded once on the CPU, every generator layer
    is read in one forward pass of a zero input, and every image of the reference set and
    a sample of the null pool (``metamer_test.pool``, or the reference set's declared training
    pool) is read once and converted to each model's input shape. ``config`` is a validated
    config; the result lists every problem found, one line each naming the model, layer, image
    or evaluator, and is empty when the study can run (:func:`check_study` also says what was
    checked).
    """
    return check_study(config).problems


#: The line of the pre-flight report after which its warnings are listed, one ``  - `` line each.
WARNINGS_HEADER = "warnings (the study runs, but read these):"


def report_warnings(report: str) -> list[str]:
    """The warnings listed in a pre-flight report's text (see :func:`run_preflight`)."""
    _, found, rest = report.partition(WARNINGS_HEADER + "\n")
    return [line[4:] for line in rest.splitlines() if line.startswith("  - ")] if found else []


def format_problems(problems: Sequence[str]) -> str:
    """The message of :class:`PreflightError` for ``problems``."""
    return f"pre-flight check found {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems)


def run_preflight(config: Mapping[str, Any], out_path: str | os.PathLike) -> Path:
    """Run :func:`preflight`; write a report of what was checked to ``out_path`` if all is well.

    Parameters
    ----------
    config
        A validated config.
    out_path
        The report (text), written atomically; nothing is written when a check fails.

    Returns
    -------
    Path
        ``out_path``.

    Raises
    ------
    PreflightError
        Listing every problem found.
    """
    result = check_study(config)
    if result.problems:
        raise PreflightError(format_problems(result.problems))
    out_path = Path(out_path)
    text = "pre-flight check passed (models loaded on the CPU)\n" + "\n".join(result.checked) + "\n"
    if result.warnings:
        text += f"{WARNINGS_HEADER}\n" + "".join(f"  - {w}\n" for w in result.warnings)
    for warning in result.warnings:
        log.warning("pre-flight: %s", warning)
    with atomic_path(out_path) as tmp:
        tmp.write_text(text)
    log.info("pre-flight: passed; report %s", out_path)
    return out_path
