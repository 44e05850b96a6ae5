# A report depends on exactly the results its assignment.yaml declares, plus its templates: editing a template
# re-renders it and retrains nothing.
rule report:
    input:
        lambda wc: wf.report_inputs(CFG, wc.assignment),
    output:
        pdf=f"{CFG['reports_dir']}/{{assignment}}.pdf",
        html=f"{CFG['reports_dir']}/{{assignment}}.html",
        appendix=f"{CFG['reports_dir']}/{{assignment}}-appendix.pdf",
    params:
        cfg=lambda wc: wf.assignment_slice(CFG, wc.assignment),
    log:
        "logs/report/{assignment}.log",
    shell:
        "{PY} -m pipeline report {wildcards.assignment} --cfg {params.cfg:q} > {log} 2>&1"
