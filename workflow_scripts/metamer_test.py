"""Rule `metamer_test`: test one method's metamers from one generator at every generator layer."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821 - the package of this repository

import torch

from metamers.artifacts import atomic_path
from metamers.config import generator_layers, validate_config
from metamers.devices import resolve_device
from metamers.jobs import job_log
from metamers.metamer_test import run_metamer_test
from metamers.nulls import read_nulls
from metamers.registry import load_model

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    config = validate_config(snakemake.config)  # noqa: F821
    torch.set_num_threads(config["threads"])
    generator = snakemake.wildcards.generator  # noqa: F821
    layers = generator_layers(config, generator)
    nulls = {}
    for path in snakemake.input.nulls:  # noqa: F821
        by_statistic, attrs = read_nulls(path)
        nulls[attrs["layer"]] = {s: by_statistic[s] for s in config["metamer_test"]["statistics"]}
    model = load_model(config["models"], generator, resolve_device(config["device"]))
    table = run_metamer_test(model, snakemake.input.artifacts, nulls, layers,  # noqa: F821
                             config["metamer_test"]["comparison"])
    with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
        table.to_csv(tmp, index=False)
