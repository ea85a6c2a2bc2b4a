# Figure rules read only the small tables, so `snakemake --cores 2 figures` redraws in seconds.


rule figure:
    """Draw one figure from its tables (metamers.figures.FIGURES names them)."""
    input:
        figure_tables,
    output:
        report(
            [f"{RESULTS}/figures/{{figure}}.{fmt}" for fmt in CONFIG["figures"]["formats"]],
            caption="../report/figure.rst",
            category="Figures",
        ),
    log:
        f"{RESULTS}/logs/figures/{{figure}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/{{figure}}.tsv"
    params:
        options=figure_options,
    wildcard_constraints:
        figure="|".join(FIGURES),
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"


rule figures:
    """Every figure; `snakemake --cores 2 figures --forcerun figure` redraws them from the tables."""
    input:
        [f for name in STUDY_FIGURES for f in figure_files(name)],
