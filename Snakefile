# dfl-bench: config -> runs -> tables and figures -> reports.
# `snakemake --cores 2 --config profile=smoke` (profiles: smoke, default, full). Logic lives in pipeline/.
import sys

from snakemake.utils import min_version

from pipeline import config as cfglib
from pipeline import workflow as wf

min_version("9.0")


configfile: f"{workflow.basedir}/config/config.yaml"


CFG = cfglib.resolve(config, source="config/config.yaml or --config")
RES = CFG["results_dir"]
PY = sys.executable


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
    input:
        wf.all_targets(CFG),
    default_target: True
