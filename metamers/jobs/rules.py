"""The workflow's rules, each one call of a job function of this package.

Every rule of the Snakefile runs the same script (``workflow_scripts/run_rule.py``), which calls
:func:`run_rule`: it opens the rule's log, validates the config and calls the rule's entry in
:data:`RULES`, which passes the rule's wildcards, inputs and outputs to its job function. A
job function takes a validated config and paths, so every rule can be run (and is tested)
without Snakemake.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from ..config import validate_config
from ..registry import Registry
from .common import job_log


def job(module: str, name: str) -> Callable[..., Any]:
    """Job function ``name`` of ``metamers.jobs.<module>``, imported when called: a table or
    figure job then does not import torch for the generation jobs' modules."""
    return getattr(import_module(f"{__package__}.{module}"), name)


#: Rule name -> ``(snakemake, config) -> result``: the call of its job function.
RULES: Registry[Callable[[Any, dict[str, Any]], Any]] = Registry("rule")

RULES.register("train_model", lambda smk, config: job("training", "train_model")(
    config, smk.wildcards.model, smk.output.checkpoint, smk.output.metrics))
RULES.register("generate", lambda smk, config: job("generate", "generate")(
    config, smk.wildcards.method, smk.wildcards.generator, smk.wildcards.layer, smk.wildcards.batch, smk.output[0],
    null_paths=list(smk.input.nulls)))
RULES.register("null_distribution", lambda smk, config: job("nulls", "null_distribution")(
    config, smk.wildcards.generator, smk.wildcards.layer, smk.output[0]))
RULES.register("null_tables", lambda smk, config: job("nulls", "null_tables")(
    list(smk.input), smk.output.thresholds, smk.output.histograms))
RULES.register("metamer_test", lambda smk, config: job("metamer_test", "metamer_test")(
    config, smk.wildcards.generator, list(smk.input.artifacts), list(smk.input.nulls), smk.output[0]))
RULES.register("metamer_test_table", lambda smk, config: job("metamer_test", "metamer_test_table")(
    list(smk.input), smk.output.rows, smk.output.summary))
RULES.register("recognizability", lambda smk, config: job("recognizability", "recognizability")(
    config, list(smk.input.artifacts), smk.output[0]))
RULES.register("transfer_table", lambda smk, config: job("recognizability", "transfer_table")(
    list(smk.input.recognizability), smk.input.metamer_test, smk.output.recognizability, smk.output.transfer))
RULES.register("metamer_index", lambda smk, config: import_module("metamers.artifacts.metamers").write_metamer_index(
    list(smk.input.artifacts), smk.output[0]))
RULES.register("representation_activations", lambda smk, config: job("representation", "representation_activations")(
    config, smk.wildcards.method, smk.wildcards.generator, smk.wildcards.evaluator,
    import_module("metamers.artifacts.metamers").read_metamer_index(smk.input.index), smk.output[0]))
RULES.register("representation", lambda smk, config: job("representation", "representation")(
    config, smk.wildcards.method, smk.wildcards.generator, smk.wildcards.evaluator, smk.input.activations,
    smk.input.metamer_test, list(smk.input.nulls), smk.output.rows, smk.output.ood, smk.output.images,
    smk.output.draws))
RULES.register("representation_table", lambda smk, config: job("representation", "representation_table")(
    list(smk.input.rows), list(smk.input.ood), smk.output.rows, smk.output.ood, list(smk.input.images),
    smk.output.images))
RULES.register("inversion", lambda smk, config: job("inversion", "inversion")(
    config, smk.wildcards.evaluator, list(smk.input.artifacts), smk.output[0]))
RULES.register("inversion_table", lambda smk, config: job("inversion", "inversion_table")(
    list(smk.input), smk.output.csv, smk.output.npz))
RULES.register("layer_depths", lambda smk, config: job("relations", "layer_depths")(config, smk.output[0]))
RULES.register("transfer_by_relation", lambda smk, config: job("relations", "transfer_by_relation")(
    config, smk.input.recognizability, smk.input.representation, smk.input.depths, smk.output.table,
    smk.output.pairs, list(smk.input.draws)))
RULES.register("image_quality", lambda smk, config: job("quality", "image_quality")(
    config, smk.wildcards.method, smk.wildcards.generator, list(smk.input.artifacts), smk.output[0]))
RULES.register("image_quality_table", lambda smk, config: job("quality", "image_quality_table")(
    list(smk.input.quality), smk.input.metamer_test, smk.output[0]))
RULES.register("diversity", lambda smk, config: job("quality", "diversity")(
    config, smk.wildcards.method, smk.wildcards.generator, list(smk.input.artifacts), smk.input.metamer_test,
    list(smk.input.activations), smk.output[0]))
RULES.register("diversity_table", lambda smk, config: job("quality", "diversity_table")(
    config, list(smk.input), smk.output.rows, smk.output.summary))
RULES.register("grid_images", lambda smk, config: job("figures", "grid_images")(config, list(smk.input), smk.output[0]))
RULES.register("figure", lambda smk, config: job("figures", "figure")(
    config, smk.wildcards.figure, list(smk.input), list(smk.output)))


def run_rule(smk: Any) -> Any:
    """Run the job of Snakemake rule ``smk.rule`` (the ``snakemake`` object of a rule's script),
    logging to the rule's log file."""
    with job_log(smk.log[0] if smk.log else None):
        return RULES[smk.rule](smk, validate_config(smk.config))
