rule inversion:
    """Seeing what each model keeps: one evaluator's representations of a few references and of
    all their metamers, inverted at its inversion layers with image priors."""
    input:
        artifacts=inversion_artifacts,
        weights=lambda wildcards: model_weights(wildcards.evaluator),
    output:
        f"{RESULTS}/inversions/{{evaluator}}.h5",
    log:
        f"{RESULTS}/logs/inversion/{{evaluator}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/inversion/{{evaluator}}.tsv"
    params:
        job=inversion_params,
    wildcard_constraints:
        evaluator="|".join(INVERSION) or "^$",
    threads: CONFIG["threads"]
    resources:
        gpu=GPU,
        mem_mb=CONFIG["resources"]["generate_mem_mb"],
        runtime=runtime("generate"),
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"


rule inversion_table:
    """The inversions as two small tables: inversions.csv (losses, distances) and inversions.npz (pixels)."""
    input:
        [f"{RESULTS}/inversions/{evaluator}.h5" for evaluator in INVERSION],
    output:
        csv=f"{RESULTS}/tables/inversions.csv",
        npz=f"{RESULTS}/tables/inversions.npz",
    log:
        f"{RESULTS}/logs/inversion_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/inversion_table.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"
