rule aggregate:
    input:
        runs=lambda wc: wf.run_files(CFG, wc.family),
        code=lambda wc: wf.aggregate_code(wc.family),
    output:
        table=f"{RES}/tables/{{family}}.csv",
        figures=directory(f"{RES}/figures/{{family}}"),
    params:
        cfg=lambda wc: wf.family_slice(CFG, wc.family),
    log:
        "logs/aggregate/{family}.log",
    shell:
        "{PY} -m pipeline aggregate {wildcards.family} --cfg {params.cfg:q} > {log} 2>&1"
