"""Rule `recognizability`: every evaluator classifies one method's metamers from one generator."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821 - the package of this repository

import logging

import pandas as pd
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
    order = {gen: generator_layers(config, gen) for gen in config["generators"]}
    device = resolve_device(config["device"])
    tables = []
    for evaluator in config["evaluators"]:  # one model in memory at a time
        model = load_model(config["models"], evaluator, device)
        tables.append(recognizability(snakemake.input.artifacts, model, order))  # noqa: F821
        logging.info("%s classified %d metamers", evaluator, len(tables[-1]))
        del model
    with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
        pd.concat(tables, ignore_index=True).to_csv(tmp, index=False)
