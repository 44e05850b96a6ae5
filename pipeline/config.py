"""Load the workflow configuration, apply a profile, validate it, and resolve each run's parameters.

One resolution path serves the Snakefile and the command line, so both always agree on what a run is.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
PROFILES = ("smoke", "default", "full")


class ConfigError(ValueError):
    """A one-line, user-facing configuration problem."""


def _read_yaml(path: Path) -> dict:
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _schema() -> dict:
    return _read_yaml(CONFIG_DIR / "schema.yaml")


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def validate(cfg: dict, source: str = "config/config.yaml") -> None:
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(list(e.absolute_path)), str(e.absolute_path)))
    if not errors:
        return
    err = errors[0]
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed)) if isinstance(err.instance, dict) else []
        hint = f"unknown key {', '.join(repr(e) for e in extra)}; allowed: {', '.join(allowed)}"
    elif err.schema.get("description") and err.validator in ("pattern", "minLength"):
        hint = f"{err.instance!r} is refused: {err.schema['description']}"
    else:
        hint = err.message
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    raise ConfigError(f"config error at {_where(err)}: {hint}{more}; fix {source}")


def resolve(raw: dict, profile: str | None = None, source: str = "config/config.yaml") -> dict:
    """Apply the profile named in `raw` (or `profile`) on top of `raw` and validate the result.

    Only for a configuration that holds no user overrides (tests, the bench); `load` orders the layers."""
    return _layered([(source, raw)], profile)


def _known_profiles() -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / "profiles").glob("*.yaml"))


def _layered(layers: list[tuple[str, dict]], profile: str | None) -> dict:
    """Merge base < profile < user layers, validating after each so an error names the layer that caused it.

    `layers[0]` is the base configuration; the rest are the user's (files, then command line) and override the
    profile: a user who asks for 3 seeds under `smoke` gets 3 seeds.
    """
    asked = [layer.get("profile") for _, layer in layers[1:] if "profile" in layer]
    profile = asked[-1] if asked else (profile or layers[0][1].get("profile", "default"))
    if not isinstance(profile, str):
        raise ConfigError(f"profile must be a name, got {profile!r}; choose one of: {', '.join(_known_profiles())}")
    path = CONFIG_DIR / "profiles" / f"{profile}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown profile {profile!r}; choose one of: {', '.join(_known_profiles())}")
    (base_source, merged), users = layers[0], layers[1:]
    ordered = [(base_source, merged), (str(path.relative_to(ROOT)), _read_yaml(path)), *users]
    merged = {}
    for source, layer in ordered:
        merged = deep_merge(merged, layer)
        merged["profile"] = profile
        validate(merged, source=source)
    return merged


def load(profile: str | None = None, configfiles: list[Path] | tuple = (), overrides: dict | None = None) -> dict:
    """config/config.yaml < config/profiles/PROFILE.yaml < each of `configfiles` < `overrides` (the command line).

    `profile` is the profile asked for outside the layers (e.g. `--profile`); a `profile` key in the user's
    files or overrides wins over it."""
    layers = [("config/config.yaml", _read_yaml(CONFIG_DIR / "config.yaml"))]
    for extra in configfiles:
        extra = Path(extra)
        if not extra.is_file():
            raise ConfigError(f"config file {extra} not found; check the path given to --configfile")
        layers.append((str(extra), _read_yaml(extra)))
    if profile is not None:
        layers.append(("--profile", {"profile": profile}))
    if overrides:
        layers.append(("the command line (--config)", dict(overrides)))
    return _layered(layers, profile)


def command_line_values(values: dict) -> dict:
    """Snakemake's `--config seeds=[0,1]` gives ['0', '1']: read each string as YAML, as a config file would."""
    def parse(v):
        if isinstance(v, str):
            try:
                return yaml.safe_load(v)
            except yaml.YAMLError:
                return v
        if isinstance(v, (list, tuple)):
            return [parse(x) for x in v]
        return v
    return {k: parse(v) for k, v in values.items()}


def family(cfg: dict, name: str) -> dict:
    try:
        return cfg["families"][name]
    except KeyError:
        raise ConfigError(f"unknown family {name!r}; known: {', '.join(cfg['families'])}") from None


def variant_params(cfg: dict, fam: str, variant: str) -> dict[str, Any]:
    """Family defaults overlaid with the variant's own parameters: everything a run needs to know."""
    spec = family(cfg, fam)
    if variant not in spec["variants"]:
        raise ConfigError(f"unknown variant {variant!r} of {fam}; known: {', '.join(spec['variants'])}")
    params = deep_merge(spec.get("defaults", {}), spec["variants"][variant] or {})
    for key in ("train_limit", "eval_limit", "val_size", "split_seed"):
        params.setdefault(key, cfg.get(key))
    return params


def seeds(cfg: dict, fam: str) -> list[int]:
    return list(family(cfg, fam).get("seeds", cfg["seeds"]))


def families_of(cfg: dict, assignment: str | None = None) -> list[str]:
    return [f for f, spec in cfg["families"].items() if assignment is None or spec["assignment"] == assignment]


def runs(cfg: dict, assignment: str | None = None) -> Iterator[tuple[str, str, int]]:
    for fam in families_of(cfg, assignment):
        for variant in cfg["families"][fam]["variants"]:
            for seed in seeds(cfg, fam):
                yield fam, variant, seed
