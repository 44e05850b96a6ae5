rule report:
    """Render an assignment's report: PDF, HTML, appendix and the JSON summary reports/index.html is built from.

    It depends on exactly the results its assignment.yaml declares, plus its templates and code: editing a template
    re-renders it and retrains nothing."""
    input:
        lambda wc: wf.report_inputs(CFG, wc.assignment),
    output:
        pdf=wf.report_output(CFG, "pdf"),
        html=wf.report_output(CFG, "html"),
        appendix=wf.report_output(CFG, "appendix"),
        # The summary (pages, limit, provenance) that reports/index.html is built from.
        summary=wf.report_output(CFG, "summary"),
    # Only real assignments: reports/index.html must not look like a report named "index".
    wildcard_constraints:
        assignment="|".join(wf.assignments(CFG)),
    params:
        cfg=lambda wc: wf.assignment_slice(CFG, wc.assignment),
        python=PYTHON,
    log:
        wf.log("report", "{assignment}"),
    conda:
        wf.JOB_ENV
    shell:
        "{params.python:q} -m pipeline report {wildcards.assignment} --cfg {params.cfg:q} > {log} 2>&1"


rule index:
    """reports/index.html: every report's page count, first page, links and provenance; re-renders no report."""
    input:
        wf.index_inputs(CFG),
    output:
        wf.index_targets(CFG),
    params:
        cfg=wf.to_json({"reports_dir": CFG["reports_dir"]}),
        python=PYTHON,
    log:
        wf.log("report", "index"),
    conda:
        wf.JOB_ENV
    shell:
        "{params.python:q} -m pipeline index --cfg {params.cfg:q} > {log} 2>&1"


localrules:
    index,
