"""What every run leaves behind: a directory under reports/ with report.json (and, as suites grow, junit.xml and index.html)."""
