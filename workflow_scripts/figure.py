"""Rule `figure`: draw one figure from its table."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821 - the package of this repository

import numpy as np
import pandas as pd

from metamers import figures
from metamers.jobs import job_log

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    name = snakemake.wildcards.figure  # noqa: F821
    table_path = snakemake.input[0]  # noqa: F821
    if table_path.endswith(".npz"):
        with np.load(table_path) as npz:
            table = {k: npz[k] for k in npz.files}
    else:
        table = pd.read_csv(table_path)
    figures.save_figure(getattr(figures, name)(table), snakemake.output)  # noqa: F821
