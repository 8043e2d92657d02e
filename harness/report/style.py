"""The one stylesheet of every HTML report (gating suites, the gating run, chaos, benchmarks),
and the Jinja environment that puts it in each page's head.

Templates start with `{{ head(title) }}` and add `class="wide"` to <body> for wide tables;
numeric tables (first column left, the rest right) carry `class="numbers"`.
Outcomes are CSS classes: `class="{{ outcome|css }}"` ("not run" becomes "not-run")."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, select_autoescape
from markupsafe import Markup, escape

CSS = """body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; }
body.wide { max-width: 1200px; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
table.numbers td, table.numbers th { text-align: right; }
table.numbers td:first-child, table.numbers th:first-child { text-align: left; }
.pass, .passed { color: #17803d; } .fail, .failed, .error { color: #b3261e; font-weight: bold; }
.skip, .skipped, .not_supported { color: #777; } .not-run { color: #b3261e; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; }
"""


def head(title: str) -> Markup:
    """The page's doctype and <head>: its title (escaped) and the stylesheet."""
    return Markup('<!doctype html>\n<html><head><meta charset="utf-8"><title>{}</title>\n<style>\n{}</style></head>').format(
        escape(title), Markup(CSS)
    )


def css_class(outcome: Any) -> str:
    return str(outcome).replace(" ", "-")


ENV = Environment(autoescape=select_autoescape(default=True))
ENV.globals["head"] = head
ENV.filters["css"] = css_class


def render(template: str, **context: Any) -> str:
    return ENV.from_string(template).render(**context)
