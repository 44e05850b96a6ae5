rule fetch_data:
    """Fetch one dataset into data/FOLDER/raw/ and verify it against its pinned digests."""
    output:
        wf.raw_files(CFG, "{folder}"),
    params:
        name=lambda wc: wf.dataset_name(wc.folder),
        cfg=lambda wc: wf.to_json({k: CFG[k] for k in ("data_dir",)}),
        python=PYTHON,
    priority: wf.fetch_priority(CFG)
    log:
        wf.log("fetch_data", "{folder}"),
    conda:
        wf.JOB_ENV
    shell:
        "{params.python:q} -m pipeline fetch-data {params.name} --cfg {params.cfg:q} > {log} 2>&1"
