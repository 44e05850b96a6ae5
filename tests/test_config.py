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
