"""Rule `null_tables`: thresholds and histograms of every null as small tables."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821 - the package of this repository

from metamers.artifacts import atomic_path
from metamers.jobs import job_log
from metamers.nulls import null_tables

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    thresholds, histograms = null_tables(snakemake.input)  # noqa: F821
    with atomic_path(snakemake.output.thresholds) as tmp:  # noqa: F821
        thresholds.to_csv(tmp, index=False)
    with atomic_path(snakemake.output.histograms) as tmp:  # noqa: F821
        histograms.to_csv(tmp, index=False)
