"""Report rendering: Jinja templates -> page-limited PDF with WeasyPrint, plus provenance.

Nothing is imported here: `pipeline.workflow` (read by every Snakemake job and `python -m pipeline run`) needs only
`pipeline.report.assignments`, and importing the renderer with it cost every training run pandas and Jinja."""
