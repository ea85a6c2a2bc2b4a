rule train_model:
    """Train a model declared with `source: train` (seeded, deterministic on the CPU); its
    checkpoint records clean and PGD accuracy on held-out images."""
    output:
        checkpoint=f"{RESULTS}/models/{{model}}.pt",
        metrics=f"{RESULTS}/models/{{model}}.json",
    log:
        f"{RESULTS}/logs/train_model/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_model/{{model}}.tsv"
    params:
        spec=lambda wildcards: json.dumps(CONFIG["models"][wildcards.model], sort_keys=True),
    wildcard_constraints:
        model="|".join(TRAINED) or "^$",
    threads: CONFIG["threads"]
    resources:
        gpu=GPU,
        mem_mb=CONFIG["resources"]["generate_mem_mb"],
        runtime=runtime("generate"),
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"
