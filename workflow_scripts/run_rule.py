"""Every rule's script: run the rule's job function (metamers.jobs.rules.RULES) with its log."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821 - the package of this repository

from metamers.jobs.rules import run_rule  # noqa: E402

run_rule(snakemake)  # noqa: F821 - injected by Snakemake
