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


def top_level_keys(schema: dict | None = None) -> list[str]:
    """Every key config/schema.yaml allows at the top level of the configuration, in the schema's order."""
    return list((schema or _schema())["properties"])


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
    return _layered_with_sources(layers, profile)[0]


# The layers `load` adds for `--profile` and the command line, by the names errors and `config show` give them.
PROFILE_FLAG = "--profile"
COMMAND_LINE = "the command line (--config)"
Sources = dict  # {tuple of keys: label of the layer that set the value there}


def _layered_with_sources(layers: list[tuple[str, dict]], profile: str | None) -> tuple[dict, Sources]:
    """`_layered`, and which layer set each value: {path of keys: label of the layer}, see `source_of`."""
    asked = [(source, layer.get("profile")) for source, layer in layers[1:] if "profile" in layer]
    profile = asked[-1][1] if asked else (profile or layers[0][1].get("profile", "default"))
    if not isinstance(profile, str):
        raise ConfigError(f"profile must be a name, got {profile!r}; choose one of: {', '.join(_known_profiles())}")
    path = CONFIG_DIR / "profiles" / f"{profile}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown profile {profile!r}; choose one of: {', '.join(_known_profiles())}")
    (base_source, merged), users = layers[0], layers[1:]
    profile_source = str(path.relative_to(ROOT))
    ordered = [(base_source, merged), (profile_source, _read_yaml(path)), *users]
    labels = [base_source, f"profile {profile} ({profile_source})", *(_user_label(s) for s, _ in users)]
    merged, sources = {}, {}
    for (source, layer), label in zip(ordered, labels):
        _record_sources(sources, merged, layer, label)
        merged = deep_merge(merged, layer)
        merged["profile"] = profile
        validate(merged, source=source)
    sources[("profile",)] = _user_label(asked[-1][0]) if asked else labels[0]
    return merged, sources


def _user_label(source: str) -> str:
    return source if source in (PROFILE_FLAG, COMMAND_LINE) else f"user file {source}"


def _record_sources(sources: Sources, base: dict, layer: dict, label: str, prefix: tuple = ()) -> None:
    """Note `label` for every value `layer` sets when deep_merge lays it over `base`.

    A mapping merged into a mapping is followed key by key; anything else replaces the whole value below its key,
    so what earlier layers had set beneath it is forgotten."""
    for key, value in layer.items():
        path = (*prefix, key)
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _record_sources(sources, base[key], value, label, path)
        else:
            for stale in [p for p in sources if p[:len(path)] == path]:
                del sources[stale]
            sources[path] = label


def source_of(sources: Sources, path: tuple) -> str | None:
    """The layer that set the value at `path` (the innermost one recorded at or above it)."""
    for end in range(len(path), 0, -1):
        if path[:end] in sources:
            return sources[path[:end]]
    return None


def load(profile: str | None = None, configfiles: list[Path] | tuple = (), overrides: dict | None = None) -> dict:
    """config/config.yaml < config/profiles/PROFILE.yaml < each of `configfiles` < `overrides` (the command line).

    `profile` is the profile asked for outside the layers (e.g. `--profile`); a `profile` key in the user's
    files or overrides wins over it."""
    return load_with_sources(profile, configfiles, overrides)[0]


def load_with_sources(profile: str | None = None, configfiles: list[Path] | tuple = (),
                      overrides: dict | None = None) -> tuple[dict, Sources]:
    """`load`, and which layer set each value (see `source_of`, `run_params_with_sources`)."""
    layers = [("config/config.yaml", _read_yaml(CONFIG_DIR / "config.yaml"))]
    for extra in configfiles:
        extra = Path(extra)
        if not extra.is_file():
            raise ConfigError(f"config file {extra} not found; check the path given to --configfile")
        layers.append((str(extra), _read_yaml(extra)))
    if profile is not None:
        layers.append((PROFILE_FLAG, {"profile": profile}))
    if overrides:
        layers.append((COMMAND_LINE, dict(overrides)))
    return _layered_with_sources(layers, profile)


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
    for key in RUN_TOP_LEVEL:
        params.setdefault(key, cfg.get(key))
    return params


# Top-level keys a run reads as parameters unless its family's defaults or its variant set them.
RUN_TOP_LEVEL = ("train_limit", "eval_limit", "val_size", "split_seed")


def run_params_with_sources(cfg: dict, sources: Sources, fam: str, variant: str) -> tuple[dict, dict[str, str]]:
    """A run's parameters (`variant_params`) and, for each, where its value came from: the variant or the family
    default, and the layer that set it there (config/config.yaml, the profile, a user file, the command line)."""
    params = variant_params(cfg, fam, variant)
    spec = family(cfg, fam)
    own, defaults = spec["variants"][variant] or {}, spec.get("defaults") or {}
    where = {}
    for key in params:
        if key in own:
            path, what = ("families", fam, "variants", variant, key), f"variant {variant}"
        elif key in defaults:
            path, what = ("families", fam, "defaults", key), "family default"
        else:
            path, what = (key,), "top level"
        where[key] = f"{what}: {source_of(sources, path) or 'unset'}"
    return params, where


def seeds(cfg: dict, fam: str) -> list[int]:
    return list(family(cfg, fam).get("seeds", cfg["seeds"]))


def families_of(cfg: dict, assignment: str | None = None) -> list[str]:
    return [f for f, spec in cfg["families"].items() if assignment is None or spec["assignment"] == assignment]


def runs(cfg: dict, assignment: str | None = None) -> Iterator[tuple[str, str, int]]:
    for fam in families_of(cfg, assignment):
        for variant in cfg["families"][fam]["variants"]:
            for seed in seeds(cfg, fam):
                yield fam, variant, seed
