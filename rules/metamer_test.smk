rule null_distribution:
    """Null distribution of every test statistic at one (model, layer): pairs of distinct pool images."""
    input:
        weights=null_weights,
    output:
        f"{RESULTS}/nulls/{{generator}}/{{layer}}.h5",
    log:
        f"{RESULTS}/logs/null_distribution/{{generator}}/{{layer}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/null_distribution/{{generator}}/{{layer}}.tsv"
    params:
        job=null_params,
    threads: CONFIG["threads"]
    resources:
        gpu=GPU,
        mem_mb=CONFIG["resources"]["null_mem_mb"],
        runtime=runtime("null"),
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"


rule metamer_test:
    """The metamer test of one method's metamers from one generator, at every layer of the generator."""
    input:
        artifacts=generator_artifacts,
        nulls=generator_nulls,
        weights=generator_weights,
    output:
        f"{RESULTS}/tables/metamer_test/{{method}}/{{generator}}.csv",
    log:
        f"{RESULTS}/logs/metamer_test/{{method}}/{{generator}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/metamer_test/{{method}}/{{generator}}.tsv"
    params:
        test=test_params,
    threads: CONFIG["threads"]
    resources:
        gpu=GPU,
        mem_mb=CONFIG["resources"]["evaluate_mem_mb"],
        runtime=runtime("evaluate"),
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"


rule metamer_test_table:
    """Merge the metamer tests; the fraction of metamers passing per (method, generator, layer)."""
    input:
        [
            f"{RESULTS}/tables/metamer_test/{method}/{gen}.csv"
            for method in CONFIG["methods"]
            for gen in CONFIG["generators"]
        ],
    output:
        rows=f"{RESULTS}/tables/metamer_test.csv",
        summary=f"{RESULTS}/tables/metamer_test_summary.csv",
    log:
        f"{RESULTS}/logs/metamer_test_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/metamer_test_table.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"


rule null_tables:
    """Thresholds and histograms of every null, as small tables."""
    input:
        all_nulls(),
    output:
        thresholds=f"{RESULTS}/tables/null_thresholds.csv",
        histograms=f"{RESULTS}/tables/null_histograms.csv",
    log:
        f"{RESULTS}/logs/null_tables.log",
    benchmark:
        f"{RESULTS}/benchmarks/null_tables.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"
