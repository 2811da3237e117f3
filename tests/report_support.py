"""Shared by the report-site tests: the pages a site must have, in navigation order."""

from __future__ import annotations

PAGE_FILES = [
    "index.html",
    "behaviour.html",
    "sales.html",
    "models.html",
    "segments.html",
    "audiences.html",
    "monitoring.html",
    "quality.html",
]
