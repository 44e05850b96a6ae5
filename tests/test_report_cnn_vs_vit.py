"""The cnn_vs_vit report, built from its template folder alone on the smoke results: page limit, numbers read from
results/tables, provenance footer, the declared figure, and the question checklist in the appendix."""
import json
import math
import re

import pandas as pd
import pytest
import yaml
from pypdf import PdfReader

from .conftest import ROOT

NAME = "cnn_vs_vit"
SPEC = yaml.safe_load((ROOT / "templates" / NAME / "assignment.yaml").read_text())


def _text(pdf) -> list[str]:
    # Words hyphenated at a line end ("ac\u2010 curacy") are joined again, so that sentences can be matched.
    return [re.sub(r"(\w)[\u2010\u00ad] (\w)", r"\1\2", " ".join(p.extract_text().split()))
            for p in PdfReader(pdf).pages]


@pytest.fixture(scope="module")
def pages(smoke_workflow) -> list[str]:
    return _text(smoke_workflow / "reports" / f"{NAME}.pdf")


def test_it_has_no_python_of_its_own():
    assert not (ROOT / "pipeline" / "report" / f"{NAME}.py").exists()


def test_within_its_own_page_limit(smoke_workflow, pages):
    summary = json.loads((smoke_workflow / "reports" / f"{NAME}.json").read_text())
    assert SPEC["page_limit"] == 2 and 1 <= len(pages) == summary["pages"] <= 2


def test_numbers_are_the_numbers_in_results_tables(smoke_workflow, pages):
    text = " ".join(pages)
    tables = {f: pd.read_csv(smoke_workflow / "results" / "tables" / f"{f}.csv") for f in ("cnn", "vit")}
    for fam, t in tables.items():
        best = t.loc[t["val_acc"].idxmax()]
        assert re.search(rf"{fam}: chosen on validation accuracy \([\d.]+%\), {best['variant']} "
                         rf"\({int(best['params']):,} parameters\) reaches test accuracy {100 * best['test_acc']:.2f}%",
                         text), fam
        for _, r in t.iterrows():  # every variant's row of the size-ordered table
            assert f"{r['variant']}" in text and f"{int(r['params']):,}" in text
    # Every ViT against the CNN closest to it in parameters (log scale; ties go to the first in table order), each
    # pair a row of the report's table with the seed test's verdict, and the verdicts counted in the finding.
    cnn, vit = tables["cnn"], tables["vit"]
    html = (smoke_workflow / "reports" / f"{NAME}.html").read_text()
    body = html[html.index("Each ViT against the CNN closest"):]
    body = body[:body.index("</table>")]
    rows = re.findall(r"<tr><td>(\w+) \(([\d,]+)\)</td><td>(\w+) \(([\d,]+)\)</td>(.*?)</tr>", body)
    assert [r[0] for r in rows] == list(vit["variant"]), body
    for vb, b_params, va, a_params, rest in rows:
        b = int(vit.loc[vit["variant"] == vb, "params"].iloc[0])
        nearest = min(range(len(cnn)), key=lambda i: (abs(math.log(cnn["params"].iloc[i] / b)), i))
        assert (va, int(a_params.replace(",", ""))) == (cnn["variant"].iloc[nearest], int(cnn["params"].iloc[nearest]))
        assert int(b_params.replace(",", "")) == b
        assert re.search(r"<td>(higher|lower|within\u00a0noise|single\u00a0seed)</td>$", rest), rest
    m = re.search(r"Each vit variant against the cnn variant closest to it in parameters \((\d+) pairs", text)
    assert m and int(m.group(1)) == len(vit), text
    assert "single seed: no test" in text or "seed noise" in text
    assert len(re.findall(r"per doubling of the parameters", text)) == 2


def test_footer_figure_and_question_tags(smoke_workflow, pages):
    for page in pages:
        assert "profile smoke" in page and "commit " in page and re.search(r"p\. \d+ / \d+", page)
    text = " ".join(pages)
    assert "parameters (log scale)" in text  # the declared figure's SVG text is searchable
    for q in SPEC["questions"]:
        if not q.get("appendix"):
            assert q["id"] in text
    appendix = " ".join(_text(smoke_workflow / "reports" / f"{NAME}-appendix.pdf"))
    assert "Questions and where they are answered" in appendix and "Runs behind every number" in appendix
    assert "CV-4" in appendix and "results/tables/vit.csv" in appendix
