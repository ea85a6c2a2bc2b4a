"""Rule `figure`: draw one figure from its table."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821 - the package of this repository

import numpy as np
import pandas as pd

from metamers import figures
from metamers.jobs import job_log

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    tables = []
    for path in snakemake.input:  # noqa: F821
        if path.endswith(".npz"):
            with np.load(path) as npz:
                tables.append({k: npz[k] for k in npz.files})
        else:
            tables.append(pd.read_csv(path))
    draw = getattr(figures, snakemake.wildcards.figure)  # noqa: F821
    figures.save_figure(draw(*tables, **snakemake.params.options), snakemake.output)  # noqa: F821
