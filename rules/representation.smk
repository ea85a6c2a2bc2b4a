rule metamer_index:
    """The index of one method's metamer artifacts from one generator (every layer and batch, each
    with its SHA-256): the one input that stands for them in the jobs that read them all, one per
    evaluator, so that a published-size study's DAG does not list 160 files per job."""
    input:
        artifacts=generator_artifacts,
    output:
        metamer_index_file("{method}", "{generator}"),
    log:
        f"{RESULTS}/logs/metamer_index/{{method}}/{{generator}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/metamer_index/{{method}}/{{generator}}.tsv"
    resources:
        runtime=10,
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"


rule representation_activations:
    """One evaluator's activations of the references and of one method's metamers from one
    generator at its representation layers (reduced when wide), its logits, and the metamer
    test's per-image statistics on the whole layers: computed once, read by every measure. It
    reads the artifacts its index lists (checked against their SHA-256)."""
    input:
        index=metamer_index_file("{method}", "{generator}"),
        weights=lambda wildcards: model_weights(wildcards.evaluator),
    output:
        f"{RESULTS}/representation/{{method}}/{{generator}}/{{evaluator}}.h5",
    log:
        f"{RESULTS}/logs/representation_activations/{{method}}/{{generator}}/{{evaluator}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/representation_activations/{{method}}/{{generator}}/{{evaluator}}.tsv"
    params:
        job=representation_activation_params,
    threads: CONFIG["threads"]
    resources:
        gpu=GPU,
        mem_mb=CONFIG["resources"]["evaluate_mem_mb"],
        runtime=runtime("evaluate"),
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"


rule representation:
    """The representation test of one metamer set by one evaluator: per-image similarity against
    the evaluator's nulls, RSA and CKA with permutation p-values and bootstrap intervals, and the
    out-of-distribution AUROC; reads only stored activations (no network runs)."""
    input:
        activations=f"{RESULTS}/representation/{{method}}/{{generator}}/{{evaluator}}.h5",
        metamer_test=f"{RESULTS}/tables/metamer_test/{{method}}/{{generator}}.csv",
        nulls=evaluator_nulls,
    output:
        rows=f"{RESULTS}/tables/representation/{{method}}/{{generator}}/{{evaluator}}.csv",
        ood=f"{RESULTS}/tables/ood/{{method}}/{{generator}}/{{evaluator}}.csv",
        images=f"{RESULTS}/tables/representation_images/{{method}}/{{generator}}/{{evaluator}}.csv",
        draws=f"{RESULTS}/tables/representation_draws/{{method}}/{{generator}}/{{evaluator}}.npz",
    log:
        f"{RESULTS}/logs/representation/{{method}}/{{generator}}/{{evaluator}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/representation/{{method}}/{{generator}}/{{evaluator}}.tsv"
    params:
        settings=representation_params,
    threads: CONFIG["threads"]
    resources:
        mem_mb=CONFIG["resources"]["evaluate_mem_mb"],
        runtime=runtime("evaluate"),
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"


rule representation_table:
    """Merge the representation tests: representation.csv (tidy), ood.csv and representation_images.csv."""
    input:
        rows=representation_tables("representation"),
        ood=representation_tables("ood"),
        images=representation_tables("representation_images"),
    output:
        rows=f"{RESULTS}/tables/representation.csv",
        ood=f"{RESULTS}/tables/ood.csv",
        images=f"{RESULTS}/tables/representation_images.csv",
    log:
        f"{RESULTS}/logs/representation_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/representation_table.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"
