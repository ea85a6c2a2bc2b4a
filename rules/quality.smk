rule image_quality:
    """How natural one method's metamers from one generator and their references look (NIQE,
    BRISQUE), how far each metamer is from its reference (GMSD, HaarPSI), and the held-out
    evaluators' semantic fidelity (metamers.stats.quality)."""
    input:
        artifacts=generator_artifacts,
        weights=evaluator_weights,
    output:
        f"{RESULTS}/tables/image_quality/{{method}}/{{generator}}.csv",
    log:
        f"{RESULTS}/logs/image_quality/{{method}}/{{generator}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/image_quality/{{method}}/{{generator}}.tsv"
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


rule image_quality_table:
    """Every metamer's and reference's image quality, with the metamer test's verdicts."""
    input:
        quality=[
            f"{RESULTS}/tables/image_quality/{method}/{gen}.csv"
            for method in CONFIG["methods"]
            for gen in CONFIG["generators"]
        ],
        metamer_test=f"{RESULTS}/tables/metamer_test.csv",
    output:
        f"{RESULTS}/tables/image_quality.csv",
    log:
        f"{RESULTS}/logs/image_quality_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/image_quality_table.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"


rule diversity:
    """How different the several metamers of each reference are (a method with `diversity`): in
    pixels, in SSIM and at every layer the representation test reads (metamers.stats.diversity)."""
    input:
        artifacts=generator_artifacts,
        metamer_test=f"{RESULTS}/tables/metamer_test.csv",
        activations=lambda wildcards: [
            f"{RESULTS}/representation/{wildcards.method}/{wildcards.generator}/{evaluator}.h5"
            for evaluator in CONFIG.representation_evaluators()
        ],
    output:
        f"{RESULTS}/tables/diversity/{{method}}/{{generator}}.csv",
    log:
        f"{RESULTS}/logs/diversity/{{method}}/{{generator}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/diversity/{{method}}/{{generator}}.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"


rule diversity_table:
    """Merge the diversity rows; their means per (method, generator, layer, space) with intervals."""
    input:
        [
            f"{RESULTS}/tables/diversity/{method}/{gen}.csv"
            for method in CONFIG.diversity_methods()
            for gen in CONFIG["generators"]
        ],
    output:
        rows=f"{RESULTS}/tables/diversity.csv",
        summary=f"{RESULTS}/tables/diversity_summary.csv",
    log:
        f"{RESULTS}/logs/diversity_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/diversity_table.tsv"
    params:
        intervals=json.dumps({key: CONFIG["relations"][key] for key in ("n_bootstrap", "confidence")}),
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"
