rule fetch_data:
    """Fetch one dataset into data/FOLDER/raw/ and verify it against its pinned digests."""
    output:
        [f"{CFG['data_dir']}/{{folder}}/raw/{f}" for f in wf.SPLIT_NAMES.values()],
    params:
        name=lambda wc: {"MNIST": "mnist", "FashionMNIST": "fashion-mnist", "KMNIST": "kmnist"}[wc.folder],
        cfg=lambda wc: wf.to_json({k: CFG[k] for k in ("data_dir",)}),
        python=PYTHON,
    log:
        "logs/fetch_data/{folder}.log",
    conda:
        wf.JOB_ENV
    shell:
        "{params.python:q} -m pipeline fetch-data {params.name} --cfg {params.cfg:q} > {log} 2>&1"
