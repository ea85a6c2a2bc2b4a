rule layer_depths:
    """The normalized depth of every layer the study matches or reads (0 input, 1 the last module)."""
    input:
        weights=lambda wildcards: model_weights(*CONFIG.study_models()),
    output:
        f"{RESULTS}/tables/layer_depths.csv",
    log:
        f"{RESULTS}/logs/layer_depths.log",
    benchmark:
        f"{RESULTS}/benchmarks/layer_depths.tsv"
    params:
        models=json.dumps({name: CONFIG["models"][name] for name in CONFIG.study_models()}, sort_keys=True),
    resources:
        mem_mb=CONFIG["resources"]["evaluate_mem_mb"],
        runtime=10,
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"


rule transfer_by_relation:
    """Recognizability and the representation test aggregated by relation between generator and
    evaluator (self, another seed, standard -> robust, other architecture, ...) and depth bin."""
    input:
        recognizability=f"{RESULTS}/tables/recognizability.csv",
        representation=f"{RESULTS}/tables/representation.csv",
        draws=representation_tables("representation_draws", "npz"),
        depths=f"{RESULTS}/tables/layer_depths.csv",
    output:
        table=f"{RESULTS}/tables/transfer_by_relation.csv",
        pairs=f"{RESULTS}/tables/transfer_pairs.csv",
    log:
        f"{RESULTS}/logs/transfer_by_relation.log",
    benchmark:
        f"{RESULTS}/benchmarks/transfer_by_relation.tsv"
    params:
        settings=json.dumps({**CONFIG["relations"], "seed": CONFIG["seed"]}, sort_keys=True),
        tags=json.dumps({name: CONFIG["models"][name].get("tags", {}) for name in CONFIG.study_models()}, sort_keys=True),
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/metamers.yaml"
    script:
        "../workflow_scripts/run_rule.py"
