"""Rule `generate`: one batch of metamers -> one HDF5 artifact."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821 - the package of this repository

from metamers.config import validate_config
from metamers.generation import generate_batch
from metamers.jobs import job_log

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    w = snakemake.wildcards  # noqa: F821
    generate_batch(
        validate_config(snakemake.config),  # noqa: F821
        method=w.method,
        generator=w.generator,
        layer=w.layer,
        batch=w.batch,
        out_path=snakemake.output[0],  # noqa: F821
        null_path=snakemake.input.nulls[0] if snakemake.input.nulls else None,  # noqa: F821
    )
