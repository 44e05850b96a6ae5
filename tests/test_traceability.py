"""Every number traceable: the report links a variant to the appendix row that names its runs."""
import json

from pypdf import PdfReader

from pipeline import config


def test_the_appendix_names_every_run_with_its_commit_and_precision(smoke_workflow):
    cfg = config.load("smoke")
    reports = smoke_workflow / "reports"
    for name in ("session3", "hw2"):
        text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(reports / f"{name}-appendix.pdf").pages)
        html = (reports / f"{name}-appendix.html").read_text()
        for family, variant, seed in config.runs(cfg, name):
            run = json.loads((smoke_workflow / "results" / "runs" / family / variant / f"seed{seed}" / "run.json")
                             .read_text())
            assert f'id="run-{family}-{variant}"' in html
            row = html[html.index(f'id="run-{family}-{variant}"'):].split("</tr>")[0]
            assert f"{family}/{variant}/seed{seed}" in row and run["git_commit"] in row and run["precision"] in row
        assert "Runs behind every number" in text


def test_variant_names_in_the_report_link_to_their_runs(smoke_workflow):
    html = (smoke_workflow / "reports" / "session3.html").read_text()
    for family in ("cnn", "vit"):
        for variant in config.load("smoke")["families"][family]["variants"]:
            assert f'href="session3-appendix.html#run-{family}-{variant}"' in html
