# dfl-bench: config -> runs -> tables and figures -> reports.
# `snakemake --cores 2 --config profile=smoke` (profiles: smoke, default, full). Logic lives in pipeline/.
from snakemake.utils import min_version

from pipeline import config as cfglib
from pipeline import paths
from pipeline import workflow as wf

min_version("9.0")


configfile: f"{workflow.basedir}/config/config.yaml"


# Built from the layers themselves, not Snakemake's merged `config`: the profile must sit between
# config/config.yaml and the user's --configfile/--config, which Snakemake has already merged together.
CFG = cfglib.load(
    configfiles=workflow.config_settings.configfiles,
    overrides=cfglib.command_line_values(workflow.config_settings.config),
)
wf.verify_present_data(CFG)
# Every rule's `params: python=PYTHON`: the .venv's interpreter, or the rule's conda environment's under --use-conda.
PYTHON = wf.job_python(workflow)


wildcard_constraints:
    family="|".join(CFG["families"]),
    name="|".join(CFG.get("analyses", {})),
    seed=r"\d+",


localrules:
    all,
    fetch_data,
    analyze,
    aggregate,
    report,


include: "rules/data.smk"
include: "rules/runs.smk"
include: "rules/aggregate.smk"
include: "rules/report.smk"


rule all:
    """Every report of every assignment in the configuration, and reports/index.html."""
    input:
        wf.all_targets(CFG),
        wf.index_targets(CFG),
    default_target: True
