"""Rule `grid_images`: the pixels the metamer grid figure shows, as a small table."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821 - the package of this repository

import numpy as np

from metamers.artifacts import atomic_path
from metamers.config import generator_layers, validate_config
from metamers.evaluation import grid_images
from metamers.jobs import job_log

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    config = validate_config(snakemake.config)  # noqa: F821
    order = {gen: generator_layers(config, gen) for gen in config["generators"]}
    grid = grid_images(snakemake.input, snakemake.params.n_images, order)  # noqa: F821
    with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **grid)
