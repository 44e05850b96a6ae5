"""Every question an assignment lists is answered in its report, tagged with its id, and checked off in the appendix."""
import json

import pytest
import yaml
from pypdf import PdfReader

from .conftest import ROOT


def _questions(name: str) -> list[dict]:
    return yaml.safe_load((ROOT / "templates" / name / "assignment.yaml").read_text())["questions"]


def _text(pdf) -> str:
    return " ".join(" ".join(p.extract_text().split()) for p in PdfReader(pdf).pages)


@pytest.mark.parametrize("name", ["session3", "hw2", "cnn_vs_vit"])
def test_every_question_is_listed_with_an_existing_section(name):
    spec = yaml.safe_load((ROOT / "templates" / name / "assignment.yaml").read_text())
    sections = {s["id"] for s in spec["sections"]}
    ids = [q["id"] for q in spec["questions"]]
    assert len(ids) == len(set(ids))
    for q in spec["questions"]:
        assert q["section"] in sections and q["ask"].strip(), q


@pytest.mark.parametrize("name", ["session3", "hw2", "cnn_vs_vit"])
def test_every_question_id_is_on_the_page_of_its_answer(smoke_workflow, name):
    reports = smoke_workflow / "reports"
    main, appendix = _text(reports / f"{name}.pdf"), _text(reports / f"{name}-appendix.pdf")
    summary = json.loads((reports / f"{name}.json").read_text())
    for q in _questions(name):
        where = appendix if q.get("appendix") else main
        assert q["id"] in where, f"{name}: no answer tagged {q['id']}"
        # The checklist that opens the appendix names every question and the page of its answer.
        assert q["id"] in appendix and q["ask"].split()[0] in appendix
        if not q.get("appendix"):
            page = summary["answers"][q["id"]]
            assert page is not None and 1 <= page <= summary["pages"], (q["id"], page)
            page_text = " ".join(PdfReader(reports / f"{name}.pdf").pages[page - 1].extract_text().split())
            assert q["id"] in page_text


def test_session3_answers_the_sheets_own_2d_convolution(smoke_workflow):
    conv = json.loads((smoke_workflow / "results" / "analysis" / "conv_arithmetic.json").read_text())
    assert conv["sheet_2d_stride2"]["input"] == [[2, 5, 4, 1], [3, 1, 2, 0], [4, 5, 7, 1], [1, 2, 3, 4]]
    text = _text(smoke_workflow / "reports" / "session3.pdf")
    assert "2 5 4 1 3 1 2 0 4 5 7 1 1 2 3 4" in text and "3 4 6 11" in text


def test_hw2_compares_the_references_error_rate_with_ours(smoke_workflow):
    import pandas as pd
    text = _text(smoke_workflow / "reports" / "hw2.pdf")
    g2p = pd.read_csv(smoke_workflow / "results" / "tables" / "g2p.csv")
    assert "50.02" in text and "38.08" in text and "tasks differ" in text
    for _, row in g2p.iterrows():
        assert f"{100 * row['test_ned_greedy']:.2f}" in text
