"""The formulas page (/docs/metrics): every metric's formula, served as HTML by the server."""

from dashboard.pages.formulas.page import FORMULAS_URL, METRICS_DOC, formulas_html

__all__ = ["FORMULAS_URL", "METRICS_DOC", "formulas_html"]
