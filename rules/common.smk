# Config validation, the job grid, and input functions shared by the rules.
import json
import sys

sys.path.insert(0, workflow.basedir)  # the metamers package of this repository, installed or not

from snakemake.exceptions import WorkflowError

from metamers.artifacts import metamer_path
from metamers.config import ConfigError, generator_layers, validate_config
from metamers.images import batch_ids, load_image_set

try:
    CONFIG = validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

RESULTS = CONFIG["results"]
BATCHES = list(batch_ids(load_image_set(CONFIG["images"]).ids, CONFIG["images_per_job"]))
LAYERS = {gen: generator_layers(CONFIG, gen) for gen in CONFIG["generators"]}
#: Figure name -> the table it is drawn from.
FIGURE_TABLES = {
    "metamer_grid": "metamer_grid.npz",
    "transfer_heatmap": "transfer.csv",
    "recognizability_by_layer": "transfer.csv",
}


wildcard_constraints:
    method="[^/]+",
    generator="[^/]+",
    layer="[^/]+",
    batch="b[0-9]+",
    evaluator="[^/]+",


def metamer_artifacts(wildcards=None):
    """Every generation job's artifact of the study."""
    return [
        str(metamer_path(RESULTS, method, gen, layer, batch))
        for method in CONFIG["methods"]
        for gen in CONFIG["generators"]
        for layer in LAYERS[gen]
        for batch in BATCHES
    ]


def generation_params(wildcards):
    """What a generation job depends on in the config, so that editing it re-runs the job."""
    return json.dumps(
        {
            "method": CONFIG["methods"][wildcards.method],
            "model": CONFIG["models"][wildcards.generator],
            "layers": CONFIG["generators"][wildcards.generator],
            "images": CONFIG["images"],
            "images_per_job": CONFIG["images_per_job"],
            "seed": CONFIG["seed"],
        },
        sort_keys=True,
    )


def figure_table(wildcards):
    return f"{RESULTS}/tables/{FIGURE_TABLES[wildcards.figure]}"


def figure_files(name):
    return [f"{RESULTS}/figures/{name}.{fmt}" for fmt in CONFIG["figures"]["formats"]]


def final_outputs():
    return [
        f"{RESULTS}/tables/recognizability.csv",
        f"{RESULTS}/tables/transfer.csv",
        *[f for name in FIGURE_TABLES for f in figure_files(name)],
    ]
