"""The configuration schema rejects what would silently do the wrong thing, with a message naming the fix."""
import pytest
import yaml

from pipeline import config
from pipeline.config import ConfigError

from .conftest import run_cli


def test_profiles_resolve_and_list_every_run():
    for profile in config.PROFILES:
        cfg = config.load(profile)
        runs = list(config.runs(cfg))
        assert cfg["profile"] == profile
        assert {f for f, _, _ in runs} == set(cfg["families"])
    assert len(config.variant_params(config.load("smoke"), "cnn", "kernel5")) > 5


def test_profile_overrides_family_defaults():
    smoke, default = config.load("smoke"), config.load("default")
    assert config.variant_params(smoke, "cnn", "base")["epochs"] < config.variant_params(default, "cnn", "base")["epochs"]
    assert config.variant_params(smoke, "cnn", "kernel7")["kernel"] == 7


@pytest.mark.parametrize("override, words", [
    ({"families": {"cnn": {"variants": {"x": {"kernal": 3}}}}}, ["families.cnn.variants.x", "'kernal'", "kernel"]),
    ({"seedz": [1]}, ["unknown key 'seedz'"]),
    ({"families": {"vit": {"defaults": {"depth": "deep"}}}}, ["families.vit.defaults.depth", "'deep'"]),
    ({"families": {"cnn": {"variants": {"x": {"pool": "median"}}}}}, ["pool", "'median'"]),
    ({"families": {"mlp": {"assignment": "session3", "variants": {"a": {}}}}}, ["unknown key 'mlp'"]),
])
def test_bad_config_fails_with_one_line_naming_the_key(override, words):
    with pytest.raises(ConfigError) as err:
        config.load("smoke", overrides=override)
    message = str(err.value)
    assert "\n" not in message and "fix the command line (--config)" in message
    for w in words:
        assert w in message


def test_unknown_profile():
    with pytest.raises(ConfigError, match="unknown profile 'fast'.*default"):
        config.load("fast")


def test_cli_reports_config_error_in_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"families": {"autoencoder": {"defaults": {"epochz": 3}}}}))
    proc = run_cli("run", "autoencoder", "ae16", "--profile", "smoke", "--configfile", str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: config error at families.autoencoder.defaults")
    assert "'epochz'" in lines[0] and lines[0].endswith(f"fix {bad}")


def test_each_parameter_names_the_layer_that_set_it(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"families": {"cnn": {"defaults": {"lr": 0.01, "channels": [8]},
                                                          "variants": {"kernel5": {"dropout": 0.1}}}}}))
    layers = dict(profile="smoke", configfiles=[extra],
                  overrides={"train_limit": 100, "families": {"cnn": {"variants": {"kernel5": {"kernel": 7}}}}})
    cfg, sources = config.load_with_sources(**layers)
    assert cfg == config.load(**layers)
    params, where = config.run_params_with_sources(cfg, sources, "cnn", "kernel5")
    assert params == config.variant_params(cfg, "cnn", "kernel5") and set(where) == set(params)
    smoke = "profile smoke (config/profiles/smoke.yaml)"
    expected = {
        "batch_size": (128, "family default: config/config.yaml"),
        "epochs": (1, f"family default: {smoke}"),
        "lr": (0.01, f"family default: user file {extra}"),
        "channels": ([8], f"family default: user file {extra}"),
        "dropout": (0.1, f"variant kernel5: user file {extra}"),
        "kernel": (7, "variant kernel5: the command line (--config)"),
        "train_limit": (100, "top level: the command line (--config)"),
        "eval_limit": (500, f"top level: {smoke}"),
        "val_size": (5000, "top level: config/config.yaml"),
    }
    assert {k: (params[k], where[k]) for k in expected} == expected
    assert config.source_of(sources, ("profile",)) == "--profile"


def test_a_replaced_mapping_forgets_what_earlier_layers_set_inside_it(tmp_path):
    # `variants: {kernel7: null}` replaces the variant: its kernel now comes from the family default.
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"families": {"cnn": {"variants": {"kernel7": None}}}}))
    cfg, sources = config.load_with_sources("smoke", configfiles=[extra])
    params, where = config.run_params_with_sources(cfg, sources, "cnn", "kernel7")
    assert params["kernel"] == 3 and where["kernel"] == "family default: config/config.yaml"
    assert config.source_of(sources, ("families", "cnn", "variants", "kernel7")) == f"user file {extra}"


def test_cli_config_show_prints_values_and_their_sources(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"seeds": [0, 1], "families": {"vit": {"defaults": {"depth": 3}}}}))
    proc = run_cli("config", "show", "vit", "small", "--profile", "smoke", "--configfile", str(extra))
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line.split(None, 2)[1:] for line in proc.stdout.splitlines()[1:]
             if line.startswith("  ")}
    assert lines["depth"] == ["3", f"family default: user file {extra}"]
    assert lines["epochs"] == ["1", "family default: profile smoke (config/profiles/smoke.yaml)"]
    seeds = next(line for line in proc.stdout.splitlines() if line.split()[0] == "seeds")
    assert "[0, 1]" in seeds and seeds.endswith(f"  user file {extra}")
    assert "profile smoke (chosen by --profile)" in proc.stdout.splitlines()[0]
    bad = run_cli("config", "show", "vit", "huge", "--profile", "smoke")
    assert bad.returncode == 2 and "unknown variant 'huge' of vit" in bad.stderr


def test_make_report_seeds_overrides_the_profile_on_the_command_line():
    # `make report SEEDS=0` is the quick build the README offers; it must reach Snakemake as a --config value,
    # the layer that overrides the profile's three seeds.
    import shutil
    import subprocess
    from pipeline.config import ROOT
    if not shutil.which("make"):
        pytest.skip("make not installed")
    out = subprocess.run(["make", "-n", "report", "SEEDS=0,1"], cwd=ROOT, capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if "snakemake" in l and "--config" in l)
    assert "--config profile=default seeds=[0,1] " in line
    plain = subprocess.run(["make", "-n", "report"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "seeds=" not in next(l for l in plain.splitlines() if "snakemake" in l and "--config" in l)
