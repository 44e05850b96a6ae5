"""Issue 17, reports that travel: self-contained HTML, no path of the build machine in any report file,
reports/index.html, tagged PDFs with metadata and alt text, and a headless-browser check of the HTML.

Uses the fixture assignment of tests/test_render.py; the browser test (marker `browser`) needs Chromium.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

pypdf = pytest.importorskip("pypdf")
pytest.importorskip("weasyprint")

from pipeline.report.render import render_report  # noqa: E402
from pipeline.report.build import ROOT  # noqa: E402
from pipeline.report.index import write_index  # noqa: E402

from .conftest import run_cli  # noqa: E402
from .test_render import FIXTURE, NAME, PROV, context  # noqa: E402


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """A rendered fixture build: build/results (figures) and build/reports (as build_report leaves it)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    work = tmp_path_factory.mktemp("build")
    results, reports = work / "results", work / "reports"
    results.mkdir()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 2, 3], [1, 4, 9])
    fig.savefig(results / "fig.svg")
    fig.savefig(results / "fig.png", dpi=80)
    plt.close(fig)
    summary = render_report(FIXTURE, context(), reports, NAME, results, PROV)
    (reports / f"{NAME}.json").write_text(json.dumps(summary, indent=2))  # as build.build_report does
    write_index(reports)
    return work


class Tags(HTMLParser):
    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def pdf_bytes(path: Path) -> bytes:
    """Every object of a PDF, streams decompressed: paths may hide in compressed object streams."""
    reader = pypdf.PdfReader(path)
    out = []
    for num in range(1, int(reader.trailer["/Size"])):
        try:
            obj = reader.get_object(num)
        except Exception:
            continue
        if obj is None:
            continue
        out.append(repr(obj).encode())
        if isinstance(obj, pypdf.generic.StreamObject):
            out.append(obj.get_data())
    return b"\n".join(out)


def test_reports_name_no_path_of_the_build_machine(build, tmp_path):
    moved = tmp_path / "elsewhere" / "reports"
    shutil.copytree(build / "reports", moved)  # the reports, handed to someone else
    needles = {n.encode() for n in (str(ROOT), str(build), str(build.resolve()), ROOT.as_uri(), build.as_uri())}

    files = sorted(p for p in moved.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {f"{NAME}.html", f"{NAME}.pdf", f"{NAME}-appendix.html",
                                      f"{NAME}-appendix.pdf", f"{NAME}.json", "index.html", f"{NAME}-page-1.png"}
    for path in files:
        data = pdf_bytes(path) if path.suffix == ".pdf" else path.read_bytes()
        found = [n.decode() for n in needles if n in data]
        assert not found, f"{path.name} names {found}"

    summary = json.loads((moved / f"{NAME}.json").read_text())
    for key in ("pdf", "html"):
        assert (moved / summary[key]).is_file() and (moved / summary["appendix"][key]).is_file()
    assert all((moved / p).is_file() for p in summary["previews"])


@pytest.mark.parametrize("page", [f"{NAME}.html", f"{NAME}-appendix.html", "index.html"])
def test_html_is_self_contained(build, page):
    text = (build / "reports" / page).read_text()
    tags = Tags(text).tags
    assert not [t for t, _ in tags if t == "base"]
    assert not [a for t, a in tags if t == "link" and "stylesheet" in a.get("rel", "")], "stylesheet not inlined"
    images = [a["src"] for t, a in tags if t == "img"]
    assert all(src.startswith(("data:image/png;base64,", "data:image/svg+xml;base64,")) for src in images), \
        [src[:60] for src in images]
    assert all(not a.get("href", "#").split(":")[0] in ("file", "http", "https") for t, a in tags if t == "a")
    if page != "index.html":
        assert len(images) == (2 if page == f"{NAME}.html" else 0)
        svg = base64.b64decode(images[0].split(",", 1)[1]) if images else b"<svg"
        assert b"<svg" in svg
        assert "figure img" in text  # base.css, inline


def test_index_shows_each_report_with_links_thumbnail_and_provenance(build, tmp_path):
    reports = tmp_path / "reports"
    shutil.copytree(build / "reports", reports)
    (reports / "diff.json").write_text(json.dumps({"format": 1, "counts": {"beyond_noise": 2, "identical": 40},
                                                  "changed": [{"name": "x"}]}))  # as `pipeline diff` writes it
    (reports / "diff.html").write_text("<p>diff</p>")
    (reports / "stray.json").write_text("{}")  # not a report summary: ignored

    proc = run_cli("index", "--cfg", json.dumps({"reports_dir": str(reports)}))
    assert proc.returncode == 0, proc.stderr[-2000:]
    html = (reports / "index.html").read_text()
    tags = Tags(html).tags
    hrefs = [a["href"] for t, a in tags if t == "a"]
    assert {f"{NAME}.pdf", f"{NAME}.html", f"{NAME}-appendix.pdf", f"{NAME}-appendix.html"} <= set(hrefs)
    assert all((reports / h).is_file() for h in hrefs)
    thumbs = [a for t, a in tags if t == "img"]
    assert len(thumbs) == 1 and thumbs[0]["src"].startswith("data:image/png;base64,")
    thumb = base64.b64decode(thumbs[0]["src"].split(",", 1)[1])
    assert thumb == (reports / "preview" / f"{NAME}-page-1.png").read_bytes()
    assert "1 / 2 pages" in html and "within the limit" in html
    for value in ("c0ffee1-dirty", "profile smoke", "Test CPU 3000", "2025-01-02"):
        assert value in html
    assert '<section id="diff">' in html
    assert "<td>beyond_noise</td><td>2</td>" in html and "<td>identical</td><td>40</td>" in html


def test_pdf_is_tagged_with_metadata_and_figure_alt_text(build):
    reader = pypdf.PdfReader(build / "reports" / f"{NAME}.pdf")
    meta = reader.metadata
    assert meta.title == "Fixture report: renderer self-test"
    for word in (NAME, "profile smoke", "commit c0ffee1-dirty"):
        assert word in meta.subject and word in meta.get("/Keywords", "")
    assert meta.author and meta.creator.startswith("dfl-bench")
    root = reader.trailer["/Root"]
    assert root["/MarkInfo"]["/Marked"] and root["/Lang"] == "en"

    alts = []

    def walk(node):
        node = node.get_object()
        if isinstance(node, pypdf.generic.ArrayObject):
            for kid in node:
                walk(kid)
        elif isinstance(node, pypdf.generic.DictionaryObject) and "/K" in node:
            if node.get("/S") == "/Figure":
                alts.append(str(node.get("/Alt")))
            walk(node["/K"])

    walk(root["/StructTreeRoot"])
    assert alts == ["An SVG figure.", "A PNG figure."]  # the captions


@pytest.mark.skipif(shutil.which("pdfinfo") is None, reason="needs poppler-utils (pdfinfo)")
def test_pdfinfo_sees_tags_and_keywords(build):
    info = subprocess.run(["pdfinfo", str(build / "reports" / f"{NAME}.pdf")], capture_output=True, text=True).stdout
    assert "Tagged:          yes" in info and "Keywords:        fixture, profile smoke" in info
    struct = subprocess.run(["pdfinfo", "-struct", str(build / "reports" / f"{NAME}.pdf")],
                            capture_output=True, text=True).stdout
    assert "Figure" in struct and "Table" in struct and "H2" in struct


# ---- in a real browser ----------------------------------------------------------------------------------

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


class Browser:
    """Headless Chromium driven over the DevTools protocol on --remote-debugging-pipe (fd 3 in, fd 4 out;
    JSON messages ending in NUL): no extra package, no port. Records every request a page makes."""

    def __init__(self, exe: str, profile: Path, width: int, height: int):
        self.cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                    "--remote-debugging-pipe", "about:blank"]
        self.next_id, self.inbox = 0, queue.Queue()

    def __enter__(self):
        down_r, self.down = os.pipe()
        self.up, up_w = os.pipe()
        # Above 10, so that placing them at 3 and 4 in the child cannot overwrite one with the other.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (down_r, up_w)]

        def child():
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.proc = subprocess.Popen(self.cmd, pass_fds=(3, 4), preexec_fn=child,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (down_r, up_w, *high):
            os.close(fd)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def __exit__(self, *exc):
        try:
            self.call("Browser.close")
        except Exception:
            self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self.down)

    def _read(self):
        buf = b""
        while chunk := os.read(self.up, 1 << 16):
            buf += chunk
            *msgs, buf = buf.split(b"\0")
            for m in msgs:
                self.inbox.put(json.loads(m))

    def call(self, method: str, params: dict | None = None, session: str | None = None, events=None) -> dict:
        """Send one command and wait for its answer; events that arrive meanwhile are appended to `events`."""
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.down, json.dumps(msg).encode() + b"\0")
        return self.wait(lambda m: m.get("id") == self.next_id, events)

    def wait(self, done, events=None, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            m = self.inbox.get(timeout=max(0.1, deadline - time.monotonic()))
            if done(m):
                if "error" in m:
                    raise RuntimeError(m["error"])
                return m.get("result", m)
            if events is not None and "method" in m:
                events.append(m)

    def open(self, path: Path, screenshot: Path | None = None) -> dict:
        events: list[dict] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network.enable", "Page.enable"):
            self.call(domain, session=session, events=events)
        self.call("Page.navigate", {"url": path.resolve().as_uri()}, session=session, events=events)
        if not any(e["method"] == "Page.loadEventFired" for e in events):
            self.wait(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session, events)
        expr = ("JSON.stringify({images: [...document.images].map(i => i.complete ? i.naturalWidth : 0), "
                "scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth})")
        value = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session,
                          events=events)["result"]["value"]
        if screenshot is not None:
            png = self.call("Page.captureScreenshot", {"format": "png"}, session=session, events=events)["data"]
            screenshot.write_bytes(base64.b64decode(png))
        self.call("Target.closeTarget", {"targetId": target}, events=events)
        requests = [e["params"]["request"]["url"] for e in events
                    if e["method"] == "Network.requestWillBeSent" and e.get("sessionId") == session]
        return {**json.loads(value), "requests": requests}


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")
def test_html_reports_in_headless_chromium(build, tmp_path):
    moved = tmp_path / "reports"
    shutil.copytree(build / "reports", moved)
    shots = Path(os.environ.get("DFL_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    with Browser(CHROMIUM, Path(tempfile.mkdtemp(dir=tmp_path)), width=1200, height=900) as browser:
        # The monitor itself: an external image is seen as a request (and blocked by nothing else here).
        probe = tmp_path / "probe.html"
        probe.write_text('<img src="http://127.0.0.1:9/x.png">')
        assert any(u.startswith("http://127.0.0.1:9/") for u in browser.open(probe)["requests"])

        for page in (f"{NAME}.html", f"{NAME}-appendix.html", "index.html"):
            r = browser.open(moved / page, screenshot=shots / f"{page}.png")
            outside = [u for u in r["requests"] if not u.startswith("data:") and u != (moved / page).as_uri()]
            assert outside == [], (page, outside)
            assert r["images"] and all(w > 0 for w in r["images"]) or page == f"{NAME}-appendix.html", (page, r)
            assert r["scrollWidth"] <= r["innerWidth"], (page, r)
            assert (shots / f"{page}.png").stat().st_size > 5000
