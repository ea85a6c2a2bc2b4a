rule recognizability:
    """One evaluator classifies every metamer (its 8-bit form) and every reference."""
    input:
        metamer_artifacts,
    output:
        f"{RESULTS}/tables/recognizability/{{evaluator}}.csv",
    log:
        f"{RESULTS}/logs/recognizability/{{evaluator}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/recognizability/{{evaluator}}.tsv"
    params:
        model=lambda w: json.dumps(CONFIG["models"][w.evaluator], sort_keys=True),
    threads: CONFIG["threads"]
    resources:
        gpu=1,
        mem_mb=CONFIG["resources"]["evaluate_mem_mb"],
        runtime=CONFIG["resources"]["evaluate_runtime"],
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/recognizability.py"


rule transfer_table:
    """Merge the evaluators' tables; accuracy per (method, generator, layer, evaluator)."""
    input:
        expand(f"{RESULTS}/tables/recognizability/{{evaluator}}.csv", evaluator=CONFIG["evaluators"]),
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
        "../workflow_scripts/transfer_table.py"


rule grid_images:
    """The few pixels the metamer grid shows, as a small table."""
    input:
        metamer_artifacts,
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
        "../workflow_scripts/grid_images.py"
