rule train:
    """Train one variant of a family with one seed: one job per FAMILY x VARIANT x SEED.

    It reruns when its variant's settings (params.cfg), its code or its data (input) change."""
    input:
        lambda wc: wf.run_inputs(CFG, wc.family),
    output:
        metrics=f"{RES}/runs/{{family}}/{{variant}}/seed{{seed}}/metrics.json",
        history=f"{RES}/runs/{{family}}/{{variant}}/seed{{seed}}/history.csv",
        model=f"{RES}/runs/{{family}}/{{variant}}/seed{{seed}}/model.pt",
        run=f"{RES}/runs/{{family}}/{{variant}}/seed{{seed}}/run.json",
    params:
        cfg=lambda wc: wf.run_slice(CFG, wc.family, wc.variant),
        python=PYTHON,
    threads: lambda wc: wf.threads(CFG, wc.family)
    priority: lambda wc: wf.priority(CFG, wc.family, wc.variant)
    resources:
        mem_mb=lambda wc: wf.resource(CFG, wc.family, "mem_mb", 2000),
        runtime=lambda wc: wf.resource(CFG, wc.family, "runtime", 60),
    log:
        "logs/runs/{family}/{variant}/seed{seed}.log",
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
        json=f"{RES}/analysis/{{name}}.json",
        figures=directory(f"{RES}/figures/{{name}}"),
    params:
        cfg=lambda wc: wf.to_json(wf.scalars(CFG)),
        python=PYTHON,
    log:
        "logs/analysis/{name}.log",
    conda:
        wf.JOB_ENV
    shell:
        "{params.python:q} -m pipeline analyze {wildcards.name} --cfg {params.cfg:q} > {log} 2>&1"
