"""Rule `transfer_table`: merge the evaluators' tables with the metamer test's verdicts and
summarise them per evaluator."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821 - the package of this repository

import pandas as pd

from metamers.artifacts import atomic_path
from metamers.evaluation import attach_verdicts, transfer_table
from metamers.jobs import job_log

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    rows = pd.concat([pd.read_csv(p) for p in snakemake.input.recognizability], ignore_index=True)  # noqa: F821
    rows = attach_verdicts(rows, pd.read_csv(snakemake.input.metamer_test))  # noqa: F821
    with atomic_path(snakemake.output.recognizability) as tmp:  # noqa: F821
        rows.to_csv(tmp, index=False)
    with atomic_path(snakemake.output.transfer) as tmp:  # noqa: F821
        transfer_table(rows).to_csv(tmp, index=False)
