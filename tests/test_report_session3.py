"""The session3 report from smoke results: page limit, headings, numbers from results/, figures, provenance."""
import os
import re
import shutil
import subprocess

import pandas as pd
import pytest
import yaml
from pypdf import PdfReader

from pipeline import config
from pipeline.report.fit import PageLimitError
from pipeline.report.provenance import collect
from pipeline.report.render import render_report

from .conftest import ROOT, run_cli

SPEC = yaml.safe_load((ROOT / "templates" / "session3" / "assignment.yaml").read_text())


@pytest.fixture(scope="module")
def pdf_text(smoke_workflow) -> tuple[PdfReader, list[str]]:
    reader = PdfReader(smoke_workflow / "reports" / "session3.pdf")
    return reader, [" ".join(p.extract_text().split()) for p in reader.pages]


def test_within_page_limit(pdf_text):
    reader, _ = pdf_text
    assert 1 <= len(reader.pages) <= SPEC["page_limit"] == 4


def test_every_question_has_its_heading_in_order(pdf_text):
    text = " ".join(pdf_text[1])
    positions = [text.find(s["title"]) for s in SPEC["sections"] if not s["id"] in ("ae", "full")]
    assert all(p >= 0 for p in positions), positions
    assert positions == sorted(positions)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def test_numbers_in_the_pdf_are_the_numbers_in_results(pdf_text, smoke_workflow):
    text = " ".join(pdf_text[1])
    tables = smoke_workflow / "results" / "tables"
    cnn = pd.read_csv(tables / "cnn.csv")
    for _, row in cnn.iterrows():
        assert f"{row['variant']} " in text
        assert _pct(row["test_acc"]) in text, (row["variant"], _pct(row["test_acc"]))
        assert f"{int(row['params']):,}" in text and f"{int(row['macs']):,}" in text
    vit = pd.read_csv(tables / "vit.csv")
    for _, row in vit.iterrows():
        assert _pct(row["test_acc"]) in text and _pct(row["train_acc"]) in text
    sae = pd.read_csv(tables / "stacked.csv")
    for _, row in sae.iterrows():
        for col in ("acc_frozen", "acc_finetuned", "acc_random", "few_acc_finetuned"):
            assert _pct(row[col]) in text, (row["variant"], col)
    # The best variant is chosen on validation accuracy, and reported with its test accuracy.
    best = cnn.loc[cnn["val_acc"].idxmax()]
    assert re.search(rf"Chosen on validation accuracy: {best['variant']} .*{_pct(best['test_acc'])}%", text)


def test_figures_are_embedded(pdf_text):
    reader, pages = pdf_text
    images = sum(len(page.images) for page in reader.pages)
    assert images >= 1  # PNG figures (attention map)
    text = " ".join(pages)
    # SVG figures keep their text: axis labels are searchable in the PDF
    assert "parameters (log scale)" in text and "validation accuracy (%)" in text


def test_provenance_footer_on_every_page(pdf_text):
    for page in pdf_text[1]:
        assert "profile smoke" in page and "commit " in page and re.search(r"p\. \d+ / \d+", page)


def test_appendix_has_the_autoencoders_and_full_tables(smoke_workflow):
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(
        smoke_workflow / "reports" / "session3-appendix.pdf").pages)
    assert "A. Autoencoders" in text and "B. Full tables" in text
    ae = pd.read_csv(smoke_workflow / "results" / "tables" / "autoencoder.csv")
    for _, row in ae.iterrows():
        assert f"{row['pca_test_mse']:.5f}" in text


def test_too_long_report_fails_with_one_line_naming_pages_and_sections(smoke_workflow, tmp_path):
    tdir = tmp_path / "session3"
    shutil.copytree(ROOT / "templates" / "session3", tdir)
    spec = yaml.safe_load((tdir / "assignment.yaml").read_text())
    spec["page_limit"] = 1
    (tdir / "assignment.yaml").write_text(yaml.safe_dump(spec))
    from pipeline.report import session3
    cfg = config.load("smoke")
    results = smoke_workflow / "results"
    with pytest.raises(PageLimitError) as err:
        render_report(tdir, session3.context(cfg, results), tmp_path / "out", "session3", base_url=results,
                      provenance=collect("smoke", results))
    msg = str(err.value)
    assert "\n" not in msg and "limit 1" in msg and "longest sections:" in msg
    assert re.search(r"report session3: \d+ pages at the smallest legible settings", msg)
    assert (tmp_path / "out" / "session3.overlimit.pdf").exists()


def test_cli_page_limit_error_is_one_line_and_keeps_earlier_outputs(smoke_workflow, tmp_path):
    reports = tmp_path / "reports"
    shutil.copytree(smoke_workflow / "reports", reports)
    earlier = (reports / "session3.pdf").read_bytes()
    where = tmp_path / "where.yaml"
    where.write_text(yaml.safe_dump({"results_dir": str(smoke_workflow / "results"), "reports_dir": str(reports),
                                     "data_dir": str(ROOT / "data")}))
    spec_file = ROOT / "templates" / "session3" / "assignment.yaml"
    original, stat = spec_file.read_text(), spec_file.stat()
    try:
        spec_file.write_text(original.replace("page_limit: 4", "page_limit: 1"))
        proc = run_cli("report", "session3", "--profile", "smoke", "--configfile", str(where))
    finally:
        spec_file.write_text(original)
        os.utime(spec_file, (stat.st_atime, stat.st_mtime))
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: report session3:") and "page_limit" in lines[-1]
    assert (reports / "session3.pdf").read_bytes() == earlier


def words_outside_page(pdf) -> list[str]:
    """Words whose box crosses the right or bottom page edge: a table or figure wider than the page clips them."""
    out = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    bad, width, height = [], 0.0, 0.0
    for line in out.splitlines():
        if m := re.search(r'<page width="([\d.]+)" height="([\d.]+)"', line):
            width, height = float(m.group(1)), float(m.group(2))
        elif m := re.search(r'xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', line):
            if float(m.group(1)) > width - 10 or float(m.group(2)) > height - 10:
                bad.append(m.group(3))
    return bad


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (pdftotext)")
@pytest.mark.parametrize("name", ["session3", "session3-appendix", "hw2", "hw2-appendix", "cnn_vs_vit",
                                  "cnn_vs_vit-appendix"])
def test_nothing_runs_off_the_page(smoke_workflow, name):
    assert words_outside_page(smoke_workflow / "reports" / f"{name}.pdf") == []
