"""pytest configuration shared by every test under tests/."""

# `make test` runs nbval over `tests` too, and nbval would collect the browser test's fixture notebook as if it
# were a course notebook. It is an input that test_browser.py opens in JupyterLab (on purpose, some copies of it
# are broken), not something to re-execute and compare.
collect_ignore_glob = ["browser/*.ipynb"]
