"""Rule `metamer_test_table`: merge the metamer tests and summarise them."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821 - the package of this repository

import pandas as pd

from metamers.artifacts import atomic_path
from metamers.jobs import job_log
from metamers.metamer_test import summarize

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    rows = pd.concat([pd.read_csv(p) for p in snakemake.input], ignore_index=True)  # noqa: F821
    with atomic_path(snakemake.output.rows) as tmp:  # noqa: F821
        rows.to_csv(tmp, index=False)
    with atomic_path(snakemake.output.summary) as tmp:  # noqa: F821
        summarize(rows).to_csv(tmp, index=False)
