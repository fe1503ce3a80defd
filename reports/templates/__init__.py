"""Jinja2 templates of report.html (a package only so that setuptools ships the *.j2 files)."""
