rule fetch_data:
    output:
        [f"{CFG['data_dir']}/{{folder}}/raw/{f}" for f in wf.SPLIT_NAMES.values()],
    params:
        name=lambda wc: {"MNIST": "mnist", "FashionMNIST": "fashion-mnist", "KMNIST": "kmnist"}[wc.folder],
        cfg=lambda wc: wf.to_json({k: CFG[k] for k in ("data_dir",)}),
    log:
        "logs/fetch_data/{folder}.log",
    shell:
        "{PY} -m pipeline fetch-data {params.name} --cfg {params.cfg:q} > {log} 2>&1"
