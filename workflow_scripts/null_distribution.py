"""Rule `null_distribution`: the nulls of every test statistic at one (model, layer)."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821 - the package of this repository

from metamers.config import validate_config
from metamers.jobs import job_log
from metamers.nulls import null_job

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    null_job(
        validate_config(snakemake.config),  # noqa: F821
        snakemake.wildcards.generator,  # noqa: F821
        snakemake.wildcards.layer,  # noqa: F821
        snakemake.output[0],  # noqa: F821
    )
