rule aggregate:
    """A family's table and figures, from the metrics and histories of all its runs."""
    input:
        runs=lambda wc: wf.run_files(CFG, wc.family),
        code=lambda wc: wf.aggregate_code(wc.family),
    output:
        table=wf.table_output(CFG),
        figures=directory(wf.figures_output(CFG, "{family}")),
    params:
        cfg=lambda wc: wf.family_slice(CFG, wc.family),
        python=PYTHON,
    log:
        wf.log("aggregate", "{family}"),
    conda:
        wf.JOB_ENV
    shell:
        "{params.python:q} -m pipeline aggregate {wildcards.family} --cfg {params.cfg:q} > {log} 2>&1"
