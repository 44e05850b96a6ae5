"""What a report may load, and HTML reports that travel.

A report's HTML comes partly from results/ (table cells, captions), so it must not be able to pull
arbitrary files or URLs into the PDF (issue 11: a crafted table cell attached /etc/passwd to a report
and made WeasyPrint request a local HTTP server). `ReportFetcher` lets WeasyPrint read only files
under templates/ and the build's results folder, plus data: URIs. `embed_images` turns the
figures of the written HTML into data: URIs, so that the HTML opens anywhere and names no path of
the build machine (issue 17).
"""
from __future__ import annotations

import base64
import html as htmllib
import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

from weasyprint.urls import URLFetcher

from .render import TEMPLATES_ROOT, ReportError, _show


class ReportFetcher(URLFetcher):
    """WeasyPrint's own fetcher, limited to data: URIs and files under `roots` (symlinks and .. resolved).

    A refusal raises, which WeasyPrint logs as a failed image/stylesheet/attachment (the renderer
    turns those into a ReportError); `refused` keeps the URLs so the error can name the first one.
    """

    def __init__(self, roots: list[Path], **kwargs):
        super().__init__(allowed_protocols=("file", "data"), allow_redirects=False, **kwargs)
        self.roots = [Path(r).resolve() for r in roots]
        self.refused: list[str] = []

    def local_path(self, url: str) -> Path | None:
        """The file `url` names when it is a file: URL under one of the roots, else None."""
        parts = urlsplit(url)
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            return None
        # resolve() before the check, so that neither ../ nor a symlink in results/ leads outside.
        path = Path(url2pathname(parts.path)).resolve()
        return path if any(path.is_relative_to(root) for root in self.roots) else None

    def fetch(self, url, headers=None):
        if url.split(":", 1)[0].lower() == "data":
            return super().fetch(url, headers)
        path = self.local_path(url)
        if path is None:
            self.refused.append(url)
            raise ValueError(f"refused {url!r}: {self.allowed()}")
        # Open the resolved path, not the URL: the file checked is the file read.
        return super().fetch(path.as_uri(), headers)

    def allowed(self) -> str:
        return "a report may load only data: URIs and files under " + ", ".join(_show(r) + "/" for r in self.roots)


def report_fetcher(results_dir: Path) -> ReportFetcher:
    return ReportFetcher([TEMPLATES_ROOT, results_dir])


IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]*)(")', re.IGNORECASE)


def embed_images(html: str, base_url: str, fetcher: ReportFetcher) -> str:
    """Every <img src> of `html` (relative to base_url) replaced by a data: URI of the file.

    Autoescaped attribute values are always double-quoted, which the pattern relies on. A figure
    the fetcher refuses or cannot read fails the render, as it would in the PDF.
    """
    def data_uri(match: re.Match) -> str:
        src = htmllib.unescape(match.group(2))
        if src.startswith("data:"):
            return match.group(0)
        url = urljoin(base_url, src)
        try:
            response = fetcher.fetch(url)
            try:
                body, mime = response.read(), response.content_type
            finally:
                response.close()
        except (OSError, ValueError) as exc:
            raise ReportError(f"cannot embed figure {src!r} in the HTML report: {exc}") from None
        if mime in (None, "", "application/octet-stream", "text/plain"):
            mime = "image/svg+xml" if body.lstrip()[:5] in (b"<?xml", b"<svg ") else "image/png"
        return f"{match.group(1)}data:{mime};base64,{base64.b64encode(body).decode()}{match.group(3)}"

    return IMG_SRC.sub(data_uri, html)

