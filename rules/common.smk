# Config validation, the job grid, and input functions shared by the rules.
import functools
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, workflow.basedir)  # the metamers package of this repository, installed or not

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from metamers.artifacts.files import SCHEMA_VERSIONS
from metamers.artifacts.metamers import metamer_index_path, metamer_path
from metamers.config import ConfigError, validate_config
from metamers.data import ImageError, batch_ids, grid_selection, load_image_set
from metamers.figures import FIGURES, study_figures
from metamers.models.loading import existing_weight_files
from metamers.synthesis.methods import resolve_method

try:
    CONFIG = validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

RESULTS = CONFIG["results"]


def local_gpu_count():
    """GPUs on this machine (nvidia-smi), without importing torch."""
    if shutil.which("nvidia-smi") is None:
        return 0
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines()) if out.returncode == 0 else 0


# GPU rules request `gpu: 1` (sbatch --gpus=1 under the Slurm profile; `device: cpu` asks for
# none). A workstation run (`--cores N`) on a machine with GPUs runs at most as many GPU jobs
# at once as it has GPUs, unless told otherwise with `--resources gpu=N`; without GPUs there is
# nothing to share and the jobs run on the CPU side by side. (A cluster run sets `--jobs`,
# which leaves the number of GPU jobs to the cluster.)
GPU = 0 if CONFIG["device"] == "cpu" else 1
if GPU and workflow.is_main_process and workflow.resource_settings.nodes is None:
    LOCAL_GPUS = local_gpu_count()
    if LOCAL_GPUS and "gpu" not in workflow.global_resources:
        workflow.register_resource("gpu", LOCAL_GPUS)


def runtime(name):
    """Minutes of the config's `resources.<name>_runtime`, times the attempt (retries get more)."""
    return lambda wildcards, attempt: CONFIG["resources"][f"{name}_runtime"] * attempt


#: Model -> its weight files that exist now (a missing one, or a model whose files cannot be
#: named, is reported by the pre-flight check instead); a trained model's checkpoint.
#: Models the workflow trains (with train_model): their checkpoints are inputs whether or not
#: they exist yet, so that every rule that loads one waits for (and reruns after) its training.
TRAINED = [name for name, spec in CONFIG["models"].items() if spec.get("source") == "train"]
WEIGHTS = {name: [CONFIG["models"][name]["path"]] if name in TRAINED else existing_weight_files(CONFIG["models"], [name])
           for name in CONFIG.study_models()}
PREFLIGHT = f"{RESULTS}/preflight.txt"


def model_weights(*names):
    """The existing weight files of models ``names``: inputs of every rule that loads them, so
    replacing a file reruns what depends on it. A missing file is not an input (the DAG would
    fail on it alone); the pre-flight check reports it with every other problem."""
    return sorted({f for name in names for f in WEIGHTS.get(name, [])})


def generator_weights(wildcards):
    """The weight files of the models a generation job runs (a joint generator's members, and its
    method's diversity model)."""
    return model_weights(*CONFIG.job_models(wildcards.method, wildcards.generator))


def null_weights(wildcards):
    """The weight files of a null's model (the null rule's `generator` is a model)."""
    return model_weights(wildcards.generator)


def evaluator_weights(wildcards):
    return model_weights(*CONFIG["evaluators"])


try:
    IMAGES = load_image_set(CONFIG["images"])
except ImageError as err:  # a missing folder, too large a per_class: named by its key, before any job
    raise WorkflowError(f"images: {err}") from None
BATCH_IDS = batch_ids(IMAGES.ids, CONFIG["images_per_job"])
BATCHES = list(BATCH_IDS)
GRID_IDS = grid_selection(IMAGES.ids, [IMAGES.labels[i] for i in IMAGES.ids], CONFIG["figures"]["grid_images"])
GRID_BATCHES = [b for b, ids in BATCH_IDS.items() if set(ids) & set(GRID_IDS)]
LAYERS = {gen: CONFIG.generator_layers(gen) for gen in CONFIG["generators"]}
#: Evaluator -> its inversion layers; the references inverted (one per class first, as the grid
#: chooses) and the batches that hold them (metamers.jobs.inversion.inversion_ids).
INVERSION = CONFIG.inversion_layers()
INVERSION_IDS = grid_selection(IMAGES.ids, [IMAGES.labels[i] for i in IMAGES.ids], CONFIG["inversion"]["images"])
INVERSION_BATCHES = [b for b, ids in BATCH_IDS.items() if set(ids) & set(INVERSION_IDS)]
#: The figures this study draws (an optional stage's figure only when the stage runs).
STUDY_FIGURES = study_figures(CONFIG)
METHODS = {name: resolve_method(name, entry) for name, entry in CONFIG["methods"].items()}


wildcard_constraints:
    method="[^/]+",
    generator="[^/]+",
    evaluator="[^/]+",
    layer="[^/]+",
    batch="b[0-9]+",


def null_file(generator, layer):
    return f"{RESULTS}/nulls/{generator}/{layer}.h5"


#: Model -> the layers whose nulls the study needs (every target of every generator layer).
NULL_TARGETS = CONFIG.null_targets()


def all_nulls():
    return [null_file(model, layer) for model, layers in NULL_TARGETS.items() for layer in layers]


def target_nulls(generator, layers):
    """The nulls of every (model, layer) target of `generator` at `layers`, each once."""
    files = [null_file(t.model, t.layer) for layer in layers for t in CONFIG.generator_targets(generator, layer)]
    return list(dict.fromkeys(files))


def grid_artifacts(wildcards):
    """The artifacts that hold the images the metamer grid shows."""
    return [
        str(metamer_path(RESULTS, method, gen, layer, batch))
        for method in CONFIG["methods"]
        for gen in CONFIG["generators"]
        for layer in LAYERS[gen]
        for batch in GRID_BATCHES
    ]


def generator_nulls(wildcards):
    return target_nulls(wildcards.generator, LAYERS[wildcards.generator])


def metamer_index_file(method, generator):
    return str(metamer_index_path(RESULTS, method, generator))


@functools.cache
def _generator_artifacts(method, generator):
    return tuple(str(metamer_path(RESULTS, method, generator, layer, batch))
                 for layer in LAYERS[generator] for batch in BATCHES)


def generator_artifacts(wildcards):
    """Every metamer artifact of one (method, generator): every layer and batch (computed once
    per pair; a published-size study asks for it about 1,300 times)."""
    return list(_generator_artifacts(wildcards.method, wildcards.generator))


def generation_nulls(wildcards):
    """The nulls of the generation layer's targets, when the method checks the metamer test while it runs."""
    if METHODS[wildcards.method].get("check_every", 0):
        return target_nulls(wildcards.generator, [wildcards.layer])
    return []


#: metamer_test keys a null does not depend on: the test's comparison, and where and in what
#: memory the null is computed.
NOT_NULL_KEYS = ("comparison", "memory_gb", "scratch_dir", "chunk_columns")


def null_params(wildcards):
    """What a null depends on in the config."""
    return json.dumps(
        {
            "metamer_test": {k: v for k, v in CONFIG["metamer_test"].items() if k not in NOT_NULL_KEYS},
            "model": CONFIG["models"][wildcards.generator],
            "images": CONFIG["images"],
            "schema": SCHEMA_VERSIONS["null_distribution"],
        },
        sort_keys=True,
    )


def test_params(wildcards):
    """What a metamer test depends on in the config besides its inputs."""
    settings = CONFIG["metamer_test"]
    return json.dumps({"statistics": settings["statistics"], "comparison": settings["comparison"]}, sort_keys=True)


def generation_params(wildcards):
    """The generation job's key (`Study.generation_key`: also its provenance and resume fingerprint)
    and its artifact's schema version, so that editing either re-runs the job."""
    key = CONFIG.generation_key(wildcards.method, wildcards.generator, wildcards.layer, wildcards.batch)
    return json.dumps({**key, "schema": SCHEMA_VERSIONS["generate"]}, sort_keys=True)


def evaluator_nulls(wildcards):
    """The nulls of an evaluator's representation layers (the null rule's `generator` is a model)."""
    return [null_file(wildcards.evaluator, layer) for layer in CONFIG.evaluator_layers(wildcards.evaluator)]


def representation_activation_params(wildcards):
    """What an evaluator's activation artifact depends on in the config besides its inputs."""
    return json.dumps(
        {
            "model": CONFIG["models"][wildcards.evaluator],
            "layers": CONFIG.evaluator_layers(wildcards.evaluator),
            "statistics": CONFIG["metamer_test"]["statistics"],
            "reduction": CONFIG["representation"]["reduction"],
            "baseline": {"images": CONFIG["images"], "pool": CONFIG["metamer_test"].get("pool"), "seed": CONFIG["seed"]}
            if CONFIG["representation"]["baseline"] else None,
            "schema": SCHEMA_VERSIONS["representation_activations"],
        },
        sort_keys=True,
    )


def representation_params(wildcards):
    """What the representation measures depend on in the config (not the reduction: that is the
    activation artifact's)."""
    settings = {k: v for k, v in CONFIG["representation"].items() if k != "reduction"}
    return json.dumps(
        {**settings, "comparison": CONFIG["metamer_test"]["comparison"], "seed": CONFIG["seed"],
         "schema": SCHEMA_VERSIONS["representation"]}, sort_keys=True
    )


def representation_tables(kind, ext="csv"):
    """Every (method, generator, evaluator) table of `kind` (representation, ood,
    representation_images; representation_draws with ext npz)."""
    return [
        f"{RESULTS}/tables/{kind}/{method}/{gen}/{evaluator}.{ext}"
        for method in CONFIG["methods"]
        for gen in CONFIG["generators"]
        for evaluator in CONFIG.representation_evaluators()
    ]


def inversion_artifacts(wildcards):
    """The metamer artifacts that hold the inverted references' metamers (every method, generator, layer)."""
    return [
        str(metamer_path(RESULTS, method, gen, layer, batch))
        for method in CONFIG["methods"]
        for gen in CONFIG["generators"]
        for layer in LAYERS[gen]
        for batch in INVERSION_BATCHES
    ]


def inversion_params(wildcards):
    """What an evaluator's inversions depend on in the config besides their inputs."""
    return json.dumps(
        {
            "model": CONFIG["models"][wildcards.evaluator],
            "layers": INVERSION[wildcards.evaluator],
            "method": CONFIG.inversion_method(),
            "images": INVERSION_IDS,
            "batch_invariant": CONFIG["inversion"]["batch_invariant"],
            "seed": CONFIG["seed"],
            "schema": SCHEMA_VERSIONS["inversion"],
        },
        sort_keys=True,
    )


def figure_tables(wildcards):
    """The tables of a figure (metamers.figures.FIGURES), in the order its drawing function takes them."""
    return [f"{RESULTS}/tables/{table}" for table in FIGURES[wildcards.figure].tables]


def figure_options(wildcards):
    """What a figure depends on in the config (its drawing options), so that editing it redraws."""
    return FIGURES[wildcards.figure].options(CONFIG)


def figure_files(name):
    return [f"{RESULTS}/figures/{name}.{fmt}" for fmt in CONFIG["figures"]["formats"]]


def final_outputs():
    return [
        f"{RESULTS}/tables/recognizability.csv",
        f"{RESULTS}/tables/transfer.csv",
        f"{RESULTS}/tables/metamer_test.csv",
        f"{RESULTS}/tables/metamer_test_summary.csv",
        f"{RESULTS}/tables/null_thresholds.csv",
        f"{RESULTS}/tables/representation.csv",
        f"{RESULTS}/tables/ood.csv",
        f"{RESULTS}/tables/transfer_by_relation.csv",
        f"{RESULTS}/tables/image_quality.csv",
        *([f"{RESULTS}/tables/diversity_summary.csv"] if CONFIG.diversity_methods() else []),
        *([f"{RESULTS}/tables/inversions.csv"] if INVERSION else []),
        *[f for name in STUDY_FIGURES for f in figure_files(name)],
    ]


def preflight_check():
    """The pre-flight check (Snakefile's `onstart`): before any job starts, on every run that has
    jobs to run (not on a dry run), load each configured model once and check every layer, weight
    file, image and evaluator (`python -m metamers check`), and stop the workflow listing every
    problem. It runs in a subprocess, so the scheduler does not import torch for it; its log
    is results/logs/preflight.log and its report results/preflight.txt.

    It is a hook rather than a job that the others take as input: a job's output would make
    every job downstream of it rerun whenever it reran (after any config edit), and an
    ancient() input hides the downstream jobs' own rerun triggers from Snakemake."""
    log_path = f"{RESULTS}/logs/preflight.log"
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))}
    with open(log_path, "w") as log:
        done = subprocess.run(
            [sys.executable, "-m", "metamers", "check", "--config", "-", "--report", PREFLIGHT],
            input=json.dumps(CONFIG.to_dict()), text=True, stdout=log, stderr=subprocess.STDOUT, env=env,
        )
    if done.returncode != 0:
        with open(log_path) as log:
            text = log.read()
        problems = text[text.find("pre-flight check found"):] if "pre-flight check found" in text else text[-3000:]
        raise WorkflowError(f"{problems.strip()}\n(log: {log_path}; no job was started)")
    from metamers.jobs.preflight import report_warnings  # torch-free

    with open(PREFLIGHT) as report:
        for warning in report_warnings(report.read()):
            logger.warning(f"pre-flight warning: {warning}")
