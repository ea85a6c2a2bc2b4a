rule generate:
    """Synthesise the metamers of one batch of images at one layer of one generator."""
    input:
        nulls=generation_nulls,
        weights=generator_weights,
    output:
        str(metamer_path(RESULTS, "{method}", "{generator}", "{layer}", "{batch}")),
    log:
        f"{RESULTS}/logs/generate/{{method}}/{{generator}}/{{layer}}/{{batch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate/{{method}}/{{generator}}/{{layer}}/{{batch}}.tsv"
    params:
        job=generation_params,
    threads: CONFIG["threads"]
    resources:
        gpu=GPU,
        mem_mb=CONFIG["resources"]["generate_mem_mb"],
        runtime=runtime("generate"),
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"
