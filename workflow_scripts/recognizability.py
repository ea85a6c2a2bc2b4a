"""Rule `recognizability`: one evaluator classifies every metamer and reference."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821 - the package of this repository

import logging

import torch

from metamers.artifacts import atomic_path
from metamers.config import generator_layers, validate_config
from metamers.devices import resolve_device
from metamers.evaluation import recognizability
from metamers.jobs import job_log
from metamers.registry import load_model

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    config = validate_config(snakemake.config)  # noqa: F821
    torch.set_num_threads(config["threads"])
    evaluator = snakemake.wildcards.evaluator  # noqa: F821
    model = load_model(config["models"], evaluator, resolve_device(config["device"]))
    order = {gen: generator_layers(config, gen) for gen in config["generators"]}
    table = recognizability(snakemake.input, model, order)  # noqa: F821
    with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
        table.to_csv(tmp, index=False)
    logging.info("%s classified %d metamers", evaluator, len(table))
