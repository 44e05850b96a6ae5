"""Report renderer: page fitting, provenance footer, figures, previews and failure modes.

Uses the throwaway assignment in tests/fixtures/report_fixture (page_limit 2) and a small
matplotlib figure saved as SVG and PNG; the context decides how long the report gets.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

pypdf = pytest.importorskip("pypdf")
pytest.importorskip("weasyprint")

from pipeline.report.fit import PageLimitError  # noqa: E402
from pipeline.report.render import ReportError, render_report  # noqa: E402
from pipeline.report import fit, provenance  # noqa: E402
from pipeline.report.render import format_value, make_environment, per_variant, table_model  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "report_fixture"
REPO = Path(__file__).resolve().parents[1]
NAME = "fixture"
LIMIT = 2
PROV = {"commit": "c0ffee1-dirty", "profile": "smoke", "date": "2025-01-02",
        "device": "Test CPU 3000", "training_time": "3 min 02 s"}
MAGIC = "4242.17"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = tmp_path_factory.mktemp("results")
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "fixed"}):
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.plot([1, 2, 3], [1, 4, 9])
        ax.set_title("SVGMARKER curve")  # real text in the SVG, so it is searchable in the PDF
        fig.savefig(out / "fig.svg")
        fig.savefig(out / "fig.png", dpi=80)
        plt.close(fig)
    return out


def context(**over) -> dict:
    ctx = {"magic": MAGIC, "big_figures": 0, "filler": 0,
           "rows": [{"model": "A", "acc": 0.91234, "params": 12345},
                    {"model": "B", "acc": float("nan"), "params": 678}]}
    ctx.update(over)
    return ctx


def render(results: Path, out: Path, **over) -> dict:
    return render_report(FIXTURE, context(**over), out, NAME, results, PROV)


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in pypdf.PdfReader(path).pages)


def first_fitting_in_ladder_order(summary: dict) -> None:
    """The chosen setting is the first of the ladder that fits: nothing larger was skipped."""
    tried = {(a["fig_scale"], a["font_pt"]): a["pages"] for a in summary["attempts"]}
    for s in fit.ladder():
        if (s.fig_scale, s.font_pt) == (summary["fig_scale"], summary["font_pt"]):
            return
        assert tried[(s.fig_scale, s.font_pt)] > LIMIT, f"{s} was skipped or fits"
    pytest.fail("chosen setting is not on the ladder")


def test_short_report_renders_within_limit(results, tmp_path):
    s = render(results, tmp_path)

    pdf = tmp_path / f"{NAME}.pdf"
    assert s["pages"] <= LIMIT and not s["shrunk"]
    assert (s["fig_scale"], s["font_pt"]) == (1.0, 10.5)
    assert len(pypdf.PdfReader(pdf).pages) == s["pages"]
    assert (tmp_path / f"{NAME}.html").is_file()
    assert s["appendix"]["pages"] >= 1 and (tmp_path / f"{NAME}-appendix.pdf").is_file()
    assert sorted(Path(p).name for p in s["previews"]) == [f"{NAME}-page-{n}.png" for n in range(1, s["pages"] + 1)]
    assert all((tmp_path / "preview" / f"{NAME}-page-{n}.png").stat().st_size > 1000 for n in range(1, s["pages"] + 1))
    json.dumps(s)  # the summary goes into a JSON file next to the report

    text = pdf_text(pdf)
    assert MAGIC in text
    assert PROV["commit"] in text and "Test CPU 3000" in text  # footer, on every page
    assert f"p. 1 / {s['pages']}" in text
    assert "0.912" in text and "12,345" in text  # per-column formats of the table macro
    assert "SVGMARKER" in text  # the SVG figure is drawn as vectors with its text
    images = [img for page in pypdf.PdfReader(pdf).pages for img in page.images]
    assert images, "the PNG figure is not embedded as an image XObject"
    assert 0 < s["sections"]["results"] < 1 and set(s["sections"]) == {"intro", "results", "discussion"}
    assert MAGIC in pdf_text(tmp_path / f"{NAME}-appendix.pdf")


def test_a_long_footer_breaks_between_its_items(results, tmp_path):
    # Re-rendered after a commit that retrained nothing, the footer names the runs' commit too and runs to two
    # lines: it broke inside "training" ("train-" / "ing 2 h 19 min").
    prov = {**PROV, "commit": "204f369274", "runs_commit": "091ac2b274",
            "device": "cpu:Intel(R) Xeon(R) Processor (1 thread), bf16", "training_time": "2 h 19 min"}
    render_report(FIXTURE, context(), tmp_path, NAME, results, prov)
    lines = [" ".join(line.split()) for line in pdf_text(tmp_path / f"{NAME}.pdf").splitlines()]
    footer = next(i for i, line in enumerate(lines) if line.startswith("commit 204f369274 (runs 091ac2b274)"))
    assert any("training 2 h 19 min" in line for line in lines[footer:footer + 2]), lines[footer:footer + 2]
    assert not any(line.endswith(("-", "\u2010")) for line in lines[footer:footer + 2])


def test_a_footer_of_two_lines_is_not_justified(results, tmp_path):
    """The footer is a running element taken from <body>, whose text is justified: its first line was spread
    across the page with 7 pt gaps between the words."""
    prov = {**PROV, "commit": "204f369274", "runs_commit": "091ac2b274",
            "device": "cpu:Intel(R) Xeon(R) Processor (1 thread), bf16", "training_time": "2 h 19 min"}
    import weasyprint
    render_report(FIXTURE, context(), tmp_path, NAME, results, prov)
    html = tmp_path / f"{NAME}.html"
    page = weasyprint.HTML(filename=str(html), base_url=str(tmp_path) + "/").render().pages[0]

    def boxes(box):
        yield box
        for child in getattr(box, "children", None) or []:
            yield from boxes(child)
    footer = [b for b in boxes(page._page_box) if getattr(b, "at_keyword", None) == "@bottom-left"]
    words = [b for b in boxes(footer[0]) if type(b).__name__ == "TextBox"]
    lines = {round(b.position_y) for b in words}
    assert len(lines) == 2, "the footer should run to two lines here"
    assert all(b.justification_spacing == 0 for b in words), [(b.text, b.justification_spacing) for b in words]


def test_just_over_limit_shrinks_figures_first(results, tmp_path):
    s = render(results, tmp_path / "a", big_figures=1, filler=15)

    assert s["attempts"][0]["pages"] > LIMIT, "fixture no longer overflows at the default setting"
    assert s["shrunk"] and s["pages"] <= LIMIT
    assert s["fig_scale"] < 1.0 and s["font_pt"] == 10.5
    first_fitting_in_ladder_order(s)
    pdf = tmp_path / "a" / f"{NAME}.pdf"
    assert len(pypdf.PdfReader(pdf).pages) == s["pages"]
    html = (tmp_path / "a" / f"{NAME}.html").read_text()
    assert f"--fig-scale: {s['fig_scale']:.2f}" in html
    assert len(s["previews"]) == s["pages"]

    again = render(results, tmp_path / "b", big_figures=1, filler=15)
    assert (again["fig_scale"], again["font_pt"], again["attempts"]) == (s["fig_scale"], s["font_pt"], s["attempts"])


def test_font_shrinks_once_figures_are_at_their_floor(results, tmp_path):
    s = render(results, tmp_path, big_figures=1, filler=25)

    assert s["pages"] <= LIMIT
    assert s["fig_scale"] == 0.7 and 9.0 <= s["font_pt"] < 10.5
    first_fitting_in_ladder_order(s)
    assert f"--font-pt: {s['font_pt']:.1f}pt" in (tmp_path / f"{NAME}.html").read_text()


def test_hopelessly_long_report_raises_and_keeps_earlier_outputs(results, tmp_path):
    render(results, tmp_path)
    good = (tmp_path / f"{NAME}.pdf").read_bytes()

    with pytest.raises(PageLimitError) as info:
        render(results, tmp_path, filler=200)

    msg = str(info.value)
    assert "\n" not in msg
    m = re.fullmatch(
        rf"report {NAME}: (\d+) pages at the smallest legible settings \(font 9pt, figures 70%\), limit {LIMIT}; "
        r"longest sections: Discussion \((\d+\.\d) pages\), .*; shorten them or raise page_limit in "
        r"\S*report_fixture/assignment\.yaml", msg)
    assert m, msg
    pages = int(m.group(1))
    assert pages > LIMIT and float(m.group(2)) > pages - 2
    over = tmp_path / f"{NAME}.overlimit.pdf"
    assert len(pypdf.PdfReader(over).pages) == pages
    assert (tmp_path / f"{NAME}.pdf").read_bytes() == good
    assert len(info.value.document.pages) == pages and len(info.value.sections) == 3

    render(results, tmp_path)  # a later success clears the stale over-long draft
    assert not over.exists()


def test_missing_inputs_and_context_fail_in_one_line(results, tmp_path):
    with pytest.raises(ReportError, match=r"missing inputs under .*: fig\.svg, fig\.png"):
        render_report(FIXTURE, context(), tmp_path, NAME, tmp_path, PROV)
    ctx = context()
    del ctx["magic"]
    with pytest.raises(ReportError, match="'magic' is undefined"):
        render_report(FIXTURE, ctx, tmp_path, NAME, results, PROV)
    # WeasyPrint would only log the missing image and leave a hole in the report.
    with pytest.raises(ReportError, match="nope.png"):
        render(results, tmp_path, extra_figure="nope.png")
    with pytest.raises(ReportError, match="fig_scale"):
        render(results, tmp_path, fig_scale=0.5)
    assert not (tmp_path / f"{NAME}.pdf").exists()


# ---- pieces, without WeasyPrint layout ---------------------------------------------------------

def test_ladder_shrinks_figures_then_font_never_below_9pt():
    steps = [(s.fig_scale, s.font_pt) for s in fit.ladder()]
    assert steps == [(1.0, 10.5), (0.9, 10.5), (0.8, 10.5), (0.7, 10.5), (0.7, 10.0), (0.7, 9.5), (0.7, 9.0)]
    assert fit.ladder(min_fig_scale=0.85)[-1] == fit.Setting(0.85, 9.0)
    assert min(s.font_pt for s in fit.ladder(font_pt=12, min_font_pt=6)) == 9.0
    assert [s.fig_scale for s in fit.ladder(fig_scales=[0.6, 1.0])][:2] == [1.0, 0.6]


def fake_doc(pages: int, anchors=None):
    page = SimpleNamespace(height=1000.0, anchors={})
    return SimpleNamespace(pages=[SimpleNamespace(height=1000.0, anchors=(anchors or {}).get(i, {}))
                                  for i in range(pages)] or [page])


def test_fit_tries_default_then_floor_then_in_order():
    ladder = fit.ladder()
    pages = dict(zip(ladder, [5, 4, 3, 3, 3, 2, 2]))
    calls = []

    def render(s):
        calls.append(s)
        return fake_doc(pages[s])

    r = fit.fit_pages(render, 2, ladder, name="x")
    assert r.setting == fit.Setting(0.7, 9.5) and r.pages == 2
    assert calls == [ladder[0], ladder[-1], *ladder[1:6]]
    assert fit.fit_pages(render, None, ladder, name="x").setting == ladder[0]

    calls.clear()
    with pytest.raises(PageLimitError, match=r"report x: 2 pages .* limit 1; "):
        fit.fit_pages(render, 1, ladder, name="x", sections=[{"id": "a", "title": "A"}])
    assert calls == [ladder[0], ladder[-1]]  # a hopeless report costs two renders


def test_section_pages_from_anchor_boxes_and_start_points():
    boxes = {0: {"a": (0, 0, 10, 400), "b": (0, 600, 10, 1000)}, 1: {"b": (0, 0, 10, 1000)}, 2: {"b": (0, 0, 10, 250)}}
    assert fit.section_pages(fake_doc(3, boxes), ["a", "b", "zz"]) == {"a": 0.4, "b": 1.65, "zz": 0.0}
    starts = {0: {"a": (0, 0), "b": (0, 500)}}
    assert fit.section_pages(fake_doc(3, starts), ["a", "b"]) == {"a": 0.5, "b": 2.5}


def test_table_macro_formats_and_aligns(tmp_path):
    pd = pytest.importorskip("pandas")
    env = make_environment(FIXTURE)
    tmpl = env.from_string('{% import "_base/macros.html.j2" as m %}'
                           '{{ m.table(df, {"model": "Model", "acc": "Acc."}, {"acc": "{:.1%}"}, "Cap", bold={"model": "b"}) }}')
    df = pd.DataFrame({"model": ["a", "b"], "acc": [0.5, None], "other": [1, 2]})
    html = tmpl.render(df=df)
    assert '<th class="num">Acc.</th>' in html and "other" not in html
    assert '<td class="num">50.0%</td>' in html and '<td class="num missing">\u2014</td>' in html
    assert '<td class="best">b</td>' in html and "<caption>Cap</caption>" in html
    with pytest.raises(ReportError, match=r"column\(s\) 'acc' not in the data \(has: model, nope, other\)"):
        tmpl.render(df=df.rename(columns={"acc": "nope"}))
    assert format_value(3) == "3" and format_value(0.123456) == "0.1235" and format_value("x", ".2f") == "x"


def test_numbers_written_as_text_are_right_aligned_and_never_wrap():
    # Report cells are strings ("98.74 ± 0.10"); as text they were left-aligned and wrapped after the "±", which
    # doubled the height of the CNN and ViT tables in a 3-seed build.
    df = pd.DataFrame({"Hidden layers": ["128", "256-64", "512-256-128"], "Params": ["101,770", "218,058", "567,434"],
                       "Test acc. (%)": ["96.74 ± 0.04", "97.61 ± 0.03", "\u2014"], "Gap (pp)": ["+0.75", "-0.07", "+1.45"],
                       "Change": ["defaults", "a, b", "c"]})
    model = table_model(df)
    kinds = {c["key"]: c["cls"] for c in model["columns"]}
    assert kinds == {"Hidden layers": "", "Params": "num", "Test acc. (%)": "num", "Gap (pp)": "num", "Change": ""}
    first = {c: cell["cls"] for c, cell in zip(df.columns, model["rows"][0])}
    assert first["Test acc. (%)"] == "num" and first["Hidden layers"] == ""
    assert "white-space: nowrap" in next(line for line in (REPO / "templates/_base/base.css").read_text().splitlines()
                                         if line.startswith("td.num, th.num"))


def test_side_by_side_figures_are_as_tall_as_their_content(tmp_path):
    # As a flex row, WeasyPrint sized a figure whose caption ran to two lines as if its image were twice as tall:
    # a blank band a figure high under the ViT figures of session3.
    import weasyprint
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(3.4, 2.0))
    ax.bar(["a", "b"], [1, 2])
    fig.savefig(tmp_path / "g.svg")
    plt.close(fig)
    css = (REPO / "templates/_base/base.css").read_text()
    caption = "Train minus test accuracy per variant, by size. Error bars: std over seeds of each seed's own gap."
    html = (f"<html><head><style>{css} :root {{ --fig-scale: 1; }}</style></head><body><div class='side-by-side'>"
            f"<figure><img src='g.svg'><figcaption>Short.</figcaption></figure>"
            f"<figure><img src='g.svg'><figcaption>{caption}</figcaption></figure></div></body></html>")
    page = weasyprint.HTML(string=html, base_url=str(tmp_path) + "/").render().pages[0]
    figures = []

    def walk(box):
        element = getattr(box, "element", None)
        if element is not None and element.tag == "figure":
            figures.append(box)
        for child in getattr(box, "children", []):
            walk(child)
    walk(page._page_box)
    assert len(figures) == 2
    for figure in figures:
        content = sum(child.margin_height() for child in figure.children)
        assert figure.height == pytest.approx(content, abs=2)


def test_provenance_reads_runs(tmp_path):
    for i, (dev, secs) in enumerate([("NVIDIA H200", 100.0), ("NVIDIA H200", 3700.5)]):
        run = tmp_path / "results" / "runs" / "cnn" / "base" / f"seed{i}" / "run.json"
        run.parent.mkdir(parents=True)
        run.write_text(json.dumps({"device": dev, "precision": "bf16", "wall_seconds": secs}))
    p = provenance.collect("smoke", tmp_path / "results", repo_dir=tmp_path)
    assert p["commit"] == "unknown"  # tmp_path is not a git checkout
    assert (p["profile"], p["device"], p["n_runs"]) == ("smoke", "NVIDIA H200, bf16", 2)
    assert p["training_seconds"] == 3800.5 and p["training_time"] == "1 h 03 min"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", p["date"]) and set(p["packages"]) == {"torch", "weasyprint"}

    bare = provenance.collect("default", tmp_path / "nothing", repo_dir=tmp_path)
    assert bare["device"] and bare["device_source"] == "renderer" and bare["training_time"] == "n/a"
    assert provenance.format_duration(42) == "42 s" and provenance.format_duration(125) == "2 min 05 s"


def test_previews_are_skipped_with_a_warning_without_pdftoppm(monkeypatch, tmp_path, caplog):
    from pipeline.report import render as render_mod

    monkeypatch.setattr(render_mod.shutil, "which", lambda exe: None)
    assert render_mod.write_previews(tmp_path / "x.pdf", tmp_path / "preview", "x") == []
    assert "pdftoppm not found" in caplog.text


def test_the_appendix_table_leaves_out_std_rows_that_say_nothing():
    """A parameter count's std over seeds is always zero, and a single-seed build's are all missing: such rows
    doubled the appendix tables. A std that varies is kept, even where one variant's is zero."""
    df = pd.DataFrame({"variant": ["a", "b"], "n_seeds": [3, 3], "params": [10, 20], "params_std": [0.0, 0.0],
                       "test_acc": [0.9, 0.8], "test_acc_std": [0.0, 0.01], "wall_std": [float("nan")] * 2})
    t = per_variant(df)
    assert list(t.index) == ["n_seeds", "params", "test_acc", "test_acc_std"]
    assert list(t.columns) == ["a", "b"]
    assert t.loc["test_acc_std", "b"] == 0.01
