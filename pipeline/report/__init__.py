"""Report rendering: Jinja templates -> page-limited PDF with WeasyPrint, plus provenance."""
from .fit import PageLimitError, Setting
from .render import ReportError, load_assignment, make_environment, render_report, write_previews
from .provenance import collect as collect_provenance

__all__ = ["PageLimitError", "ReportError", "Setting", "collect_provenance", "load_assignment",
           "make_environment", "render_report", "write_previews"]
