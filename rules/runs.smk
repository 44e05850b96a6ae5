rule train:
    """Train one variant of a family with one seed: one job per FAMILY x VARIANT x SEED.

    It reruns when its variant's settings (params.cfg), its code or its data (input) change."""
    input:
        lambda wc: wf.run_inputs(CFG, wc.family),
    output:
        metrics=wf.run_output(CFG, paths.METRICS),
        history=wf.run_output(CFG, paths.HISTORY),
        model=wf.run_output(CFG, paths.MODEL),
        run=wf.run_output(CFG, paths.RUN_INFO),
    params:
        cfg=lambda wc: wf.run_slice(CFG, wc.family, wc.variant),
        python=PYTHON,
    threads: lambda wc: wf.threads(CFG, wc.family)
    priority: lambda wc: wf.priority(CFG, wc.family, wc.variant)
    resources:
        mem_mb=lambda wc: wf.resource(CFG, wc.family, "mem_mb", 2000),
        runtime=lambda wc: wf.resource(CFG, wc.family, "runtime", 60),
    log:
        wf.run_log(),
    conda:
        wf.JOB_ENV
    shell:
        "{params.python:q} -m pipeline run {wildcards.family} {wildcards.variant} --seed {wildcards.seed}"
        " --threads {threads} --cfg {params.cfg:q} > {log} 2>&1"


rule analyze:
    """An analysis that needs no training (pipeline/analysis/NAME.py): its JSON and figures."""
    input:
        lambda wc: wf.abspath(f"pipeline/analysis/{wc.name}.py"),
    output:
        json=wf.analysis_output(CFG),
        figures=directory(wf.figures_output(CFG, "{name}")),
    params:
        cfg=lambda wc: wf.to_json(wf.scalars(CFG)),
        python=PYTHON,
    log:
        wf.log("analysis", "{name}"),
    conda:
        wf.JOB_ENV
    shell:
        "{params.python:q} -m pipeline analyze {wildcards.name} --cfg {params.cfg:q} > {log} 2>&1"
