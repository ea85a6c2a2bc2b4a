"""Config validation: the default config, defaults, and messages that name the key."""

from __future__ import annotations

import pytest

from metamers.config import (
    ConfigError,
    load_config,
    validate_config,
)


def test_default_config_is_valid_and_gets_defaults(repo):
    config = load_config(repo / "config.yaml")
    assert config["resources"]["generate_mem_mb"] == 4000
    assert config["images"]["seed"] == 0
    trained = {f"{arch}_seed{seed}" for arch in ("mlp", "lenet5") for seed in range(3)} | {"lenet5_pgd_seed0"}
    assert set(config["evaluators"]) == {"lenet5_standard", "lenet5_robust"} | trained
    assert {name for name, m in config["models"].items() if m["source"] == "train"} == trained
    assert config["models"]["lenet5_pgd_seed0"]["training"]["style"] == "pgd"
    assert all(config["evaluators"][name]["layers"] == [] for name in trained)  # they only classify
    assert set(config["generators"]) == {"lenet5_standard", "lenet5_robust", "lenets_joint"}
    for gen in ("lenet5_standard", "lenet5_robust"):
        assert len(config.generator_layers(gen)) == 4
    assert config["generators"]["lenets_joint"]["members"] == ["lenet5_standard", "lenet5_robust"]
    assert set(config["methods"]) == {"feather2023", "polyak_priors"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(iterations=5), r"\(top level\): Additional properties are not allowed \('iterations'"),
        (lambda c: c["methods"]["adam"].update(iterations=-1), r"methods\.adam\.iterations: -1 is less than the minimum of 1"),
        (lambda c: c["methods"]["adam"].update(lr="fast"), r"methods\.adam\.lr: 'fast' is not of type 'number'"),
        (lambda c: c["methods"]["adam"].update(learning_rate=0.1), r"methods\.adam: Additional properties .*allowed keys: betas, check_every, damping, diversity, eps"),
        (lambda c: c["models"]["lenet5_standard"].update(source="hub"), r"models\.lenet5_standard\.source: 'hub' is not one of"),
        (lambda c: c.update(device="gpu"), r"device: 'gpu' does not match"),
        (lambda c: c["images"].update(type="folder"), r"images: 'root' is a required property"),
        (lambda c: c.pop("evaluators"), r"\(top level\): 'evaluators' is a required property"),
        (lambda c: c["evaluators"].append("vgg"), r"evaluators: unknown model 'vgg'; configured: lenet5_standard, lenet5_robust"),
        (lambda c: c["generators"].update(vgg={"layers": ["x"]}), r"generators\.vgg: unknown model 'vgg'; configured: lenet5_standard"),
        (lambda c: c["generators"]["lenet5_robust"]["layers"].append("relu1"), r"listed more than once: \['relu1'\]"),
        (lambda c: c.setdefault("figures", {}).update(null_layers={"lenet5_robust": "relu9"}),
         r"figures\.null_layers\.lenet5_robust: generator 'lenet5_robust': unknown layer 'relu9'; configured: relu1"),
        (lambda c: c.setdefault("figures", {}).update(null_layers={"vgg": "relu1"}),
         r"figures\.null_layers\.vgg: unknown generator 'vgg'; configured: lenet5_standard, lenet5_robust"),
        (lambda c: c["generators"]["lenet5_robust"]["layers"].append({"name": "relu1", "fakerelu": True}), r"must be a layer name or \{name"),
    ],
)
def test_invalid_configs_name_the_key_and_reason(config, edit, message):
    edit(config)
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_every_error_is_reported_at_once(config):
    config["methods"]["adam"]["iterations"] = 0
    config["threads"] = 0
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert "methods.adam.iterations" in str(err.value) and "threads: 0 is less than the minimum" in str(err.value)


def test_layer_options(config):
    config["generators"]["lenet5_robust"]["layers"][2] = {"name": "relu3", "fake_relu": True}
    config = validate_config(config)
    assert config.generator_layers("lenet5_robust") == ["relu1", "relu2", "relu3", "linear2"]
    assert config.layer_options("lenet5_robust", "relu3") == {"name": "relu3", "fake_relu": True}
    assert config.layer_options("lenet5_robust", "relu1") == {"fake_relu": None}  # the method decides
    with pytest.raises(KeyError, match="configured: relu1, relu2, relu3, linear2"):
        config.layer_options("lenet5_robust", "conv1")


def test_unreadable_config_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)


UNSAFE = "names become folders and files under results/"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(results=""), "results: '' is empty: every output would be written under '/'"),
        (lambda c: c.update(results="  "), "results: '  ' is empty"),
        (lambda c: c.update(results="/"), "results: '/' is the file system's root"),
        (lambda c: c.update(results="/tmp/../"), "results: '/tmp/../' is the file system's root"),
        (lambda c: c["methods"].update({"..": c["methods"].pop("adam")}),
         f"methods\\['..'\\]: '..' is not a file name \\(it leaves its folder\\); {UNSAFE}"),
        (lambda c: c["methods"].update({"a/b": c["methods"].pop("adam")}),
         f"methods\\['a/b'\\]: 'a/b' holds a path separator \\('/'\\); {UNSAFE}"),
        (lambda c: c["methods"].update({".hidden": c["methods"].pop("adam")}),
         r"methods\['.hidden'\]: '.hidden' starts with a dot"),
        (lambda c: c["models"].update({"a\\b": {"source": "advertorch", "weights": "clntrained"}}),
         r"models\['a\\\\b'\]: 'a\\\\b' holds a path separator \('\\\\'\)"),
        (lambda c: c["models"].update({"tab\tname": {"source": "advertorch", "weights": "clntrained"}}),
         r"models\['tab\\tname'\]: 'tab\\tname' holds a control character"),
        (lambda c: c.update(evaluators=["lenet5_standard", "../x"]), r"evaluators\[1\]: '../x' holds a path separator"),
        (lambda c: c.update(evaluators={"lenet5_standard": {"layers": ["relu1", ".."]}}),
         r"evaluators.lenet5_standard.layers\[1\]: '..' is not a file name"),
        (lambda c: c["generators"]["lenet5_robust"]["layers"].append("x/../../y"),
         r"generators.lenet5_robust.layers\[4\]: 'x/../../y' holds a path separator"),
        (lambda c: c["generators"]["lenet5_robust"]["layers"].append({"name": "..", "fake_relu": False}),
         r"generators.lenet5_robust.layers\[4\]: '..' is not a file name"),
        (lambda c: c["generators"].update(joint={"members": ["lenet5_standard", "lenet5_robust"],
                                                 "layers": [{"name": "r2", "members": {"lenet5_robust": "../relu2"}}]}),
         r"generators.joint.layers\[0\].members.lenet5_robust: '../relu2' holds a path separator"),
        (lambda c: c.update(inversion={"layers": {"lenet5_standard": ["/relu1"]}}),
         r"inversion.layers.lenet5_standard\[0\]: '/relu1' holds a path separator"),
        (lambda c: c["methods"]["adam"].update(lr=float("inf")), r"methods.adam.lr: not a finite number"),
        (lambda c: c["methods"]["adam"].update(lr=float("-inf")), r"methods.adam.lr: not a finite number"),
        (lambda c: c["methods"]["adam"].update(lr=float("nan")), r"methods.adam.lr: not a finite number"),
        (lambda c: c["metamer_test"].update(threshold=float("nan")), r"metamer_test.threshold: not a finite number"),
        (lambda c: c["methods"]["adam"].update(betas=[0.9, float("nan")]), r"methods.adam.betas\[1\]: not a finite number"),
        (lambda c: c.setdefault("relations", {}).update(depth_bins=[0, float("inf")]),
         r"relations.depth_bins\[1\]: not a finite number"),
    ],
)
def test_values_that_would_write_outside_results_or_compute_nonsense_are_refused(config, edit, message):
    edit(config)
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_safe_names_with_spaces_inner_dots_and_unicode_pass(config):
    config["methods"] = {"adam – 0.1 lr": config["methods"]["adam"]}
    config["generators"]["lenet5_standard"]["layers"] = ["relu1"]
    config["models"]["lénet robust"] = config["models"].pop("lenet5_robust")
    config["generators"]["lénet robust"] = config["generators"].pop("lenet5_robust")
    config["evaluators"] = ["lenet5_standard", "lénet robust"]
    config["methods"]["adam – 0.1 lr"]["preset"] = "adam"
    checked = validate_config(config)
    assert list(checked["methods"]) == ["adam – 0.1 lr"] and "lénet robust" in checked["generators"]


def test_unsafe_values_are_reported_with_every_schema_error_at_once(config):
    config["results"] = ""
    config["methods"]["adam"]["lr"] = float("nan")
    config["methods"]["adam"]["iterations"] = 0
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    lines = str(err.value).splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == ["methods.adam.lr", "results", "methods.adam.iterations"]
