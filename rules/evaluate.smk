rule recognizability:
    """Every evaluator classifies one method's metamers from one generator (8-bit form) and their references."""
    input:
        artifacts=generator_artifacts,
        weights=evaluator_weights,
    output:
        f"{RESULTS}/tables/recognizability/{{method}}/{{generator}}.csv",
    log:
        f"{RESULTS}/logs/recognizability/{{method}}/{{generator}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/recognizability/{{method}}/{{generator}}.tsv"
    params:
        evaluators=json.dumps({name: CONFIG["models"][name] for name in CONFIG["evaluators"]}, sort_keys=True),
    threads: CONFIG["threads"]
    resources:
        gpu=GPU,
        mem_mb=CONFIG["resources"]["evaluate_mem_mb"],
        runtime=runtime("evaluate"),
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"


rule transfer_table:
    """Merge the evaluators' tables with the metamer test's verdicts; accuracy per (method,
    generator, layer, evaluator) over passing metamers (with their number) and over all."""
    input:
        recognizability=[
            f"{RESULTS}/tables/recognizability/{method}/{gen}.csv"
            for method in CONFIG["methods"]
            for gen in CONFIG["generators"]
        ],
        metamer_test=f"{RESULTS}/tables/metamer_test.csv",
    output:
        recognizability=f"{RESULTS}/tables/recognizability.csv",
        transfer=f"{RESULTS}/tables/transfer.csv",
    log:
        f"{RESULTS}/logs/transfer_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/transfer_table.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"


rule grid_images:
    """The few pixels the metamer grid shows, as a small table."""
    input:
        grid_artifacts,
    output:
        f"{RESULTS}/tables/metamer_grid.npz",
    log:
        f"{RESULTS}/logs/grid_images.log",
    benchmark:
        f"{RESULTS}/benchmarks/grid_images.tsv"
    params:
        n_images=CONFIG["figures"]["grid_images"],
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"
