# Model metamers: generation, recognizability by every evaluator, transfer tables and figures.
#   snakemake --cores 2                       the default study (config.yaml)
#   snakemake --cores 2 --configfile my.yaml  another study
#   snakemake --cores 2 figures               regenerate figures from the tables on disk
from snakemake.utils import min_version

min_version("9.0")


# A study is its file: `--configfile` replaces the shipped config.yaml (it is not merged into it);
# config.yaml is read only when no config file is given. `--config KEY=VALUE` overrides either.
# The schema's defaults fill in what a study leaves out (rules/common.smk).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/train.smk"
include: "rules/generate.smk"
include: "rules/metamer_test.smk"
include: "rules/evaluate.smk"
include: "rules/representation.smk"
include: "rules/inversion.smk"
include: "rules/relations.smk"
include: "rules/quality.smk"
include: "rules/figures.smk"


onstart:
    preflight_check()


rule all:
    input:
        final_outputs(),
    default_target: True
