# Model metamers: generation, recognizability by every evaluator, transfer tables and figures.
#   snakemake --cores 2                       the default study (config.yaml)
#   snakemake --cores 2 --configfile my.yaml  another study
#   snakemake --cores 2 figures               regenerate figures from the tables on disk
from snakemake.utils import min_version

min_version("9.0")


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
include: "rules/figures.smk"


onstart:
    preflight_check()


rule all:
    input:
        final_outputs(),
    default_target: True
