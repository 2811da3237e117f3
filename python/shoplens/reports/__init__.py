"""The static report site: Plotly pages built from the marts and ml tables, offline."""

from shoplens.reports.site import PAGES, SiteResult, build_site

__all__ = ["PAGES", "SiteResult", "build_site"]
