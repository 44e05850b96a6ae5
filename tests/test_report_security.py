"""Issue 11, item 4: nothing leaves through a report. Values from results/ (table cells, findings) end up in
the HTML that WeasyPrint renders; they must neither attach local files to the PDF nor make requests.

The hostile value is rendered twice: escaped, as every template should (autoescape), and deliberately
unescaped (`|safe`) in a test-only template, where only the renderer's URL fetcher stands in the way.
"""
from __future__ import annotations

import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

pypdf = pytest.importorskip("pypdf")
pytest.importorskip("weasyprint")

from pipeline.report.render import ReportError, render_report  # noqa: E402

from .test_render import FIXTURE, NAME, PROV, context, pdf_text  # noqa: E402

SECRET = Path("/etc/passwd")
ALLOWED = ('<img src="fig.png" alt="figure"><img alt="dot" src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB'
           'CAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg==">')


@pytest.fixture
def server():
    """A loopback HTTP server that records every request it gets."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = tmp_path_factory.mktemp("results")
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2], [1, 2])
    fig.savefig(out / "fig.svg")
    fig.savefig(out / "fig.png", dpi=60)
    plt.close(fig)
    return out


def hostile(url: str) -> str:
    return (f'<a rel="attachment" href="file://{SECRET}">details</a>'
            f'<img src="{url}/x.png" alt="x"><link rel="attachment" href="{url}/y">')


def unsafe_assignment(tmp_path: Path, body: str) -> Path:
    """The fixture assignment, with a main template that puts `evil` into the page unescaped."""
    adir = tmp_path / "unsafe"
    shutil.copytree(FIXTURE, adir)
    (adir / "report.html.j2").write_text(
        '{% import "_base/macros.html.j2" as m %}{% call m.document() %}'
        f'{{% call m.section("intro") %}}<p>{body}</p>{{% endcall %}}{{% endcall %}}')
    return adir


def no_secret_in(pdf: Path) -> None:
    reader = pypdf.PdfReader(pdf)
    assert reader.attachments == {}, list(reader.attachments)
    first_line = SECRET.read_text().splitlines()[0]
    assert first_line not in pdf_text(pdf) and first_line.encode() not in pdf.read_bytes()


def test_hostile_table_cell_is_escaped_and_loads_nothing(results, tmp_path, server):
    url, hits = server
    evil = hostile(url)
    rows = [{"model": evil, "acc": 0.5, "params": 1}]
    render_report(FIXTURE, context(rows=rows, magic=evil), tmp_path, NAME, results, PROV)

    html = (tmp_path / f"{NAME}.html").read_text()
    assert "&lt;a rel=&#34;attachment&#34;" in html and '<a rel="attachment"' not in html
    assert f'<img src="{url}' not in html
    # Were a value ever let through unescaped, a browser opening the HTML report must not fetch it either.
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:;' in html
    assert hits == []
    no_secret_in(tmp_path / f"{NAME}.pdf")
    assert 'rel="attachment"' in pdf_text(tmp_path / f"{NAME}.pdf")  # shown as text, harmlessly


@pytest.mark.parametrize("what", ["attachment", "image", "relative", "symlink"])
def test_unescaped_links_are_refused_in_one_line(results, tmp_path, server, what):
    url, hits = server
    if what == "symlink":  # a results/ entry pointing outside it
        link = results / "innocent.png"
        if not link.is_symlink():
            os.symlink(SECRET, link)
    body = {"attachment": f'<a rel="attachment" href="file://{SECRET}">details</a>',
            "image": f'<img src="{url}/x.png" alt="x">',
            "relative": '<img src="../../../../../../../../etc/passwd" alt="x">',
            "symlink": '<img src="innocent.png" alt="x">'}[what]
    out = tmp_path / "out"

    with pytest.raises(ReportError) as info:
        # What a report may load comes first: a results/ figure and a data: URI, which must not be refused.
        render_report(unsafe_assignment(tmp_path, ALLOWED + body), context(), out, NAME, results, PROV)

    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"report {NAME} (report.html.j2): refused to load "), msg
    assert ("x.png" if what == "image" else "passwd" if what != "symlink" else "innocent.png") in msg
    assert "may load only data: URIs and files under" in msg
    assert hits == []
    assert not (out / f"{NAME}.pdf").exists() and not (out / f"{NAME}.html").exists()

