"""The modules of `reframe report`; scripts/report.py is the entry point and runs them in this order:

load     read and check the input JSON (suite results, `reframe models --json --layers`, Google Benchmark);
         the vocabulary the other modules share
tables   the rows of models.csv, metrics_per_class.csv, runs.csv, layers.csv and benchmarks.csv
output   the Writer: every output file written atomically into the output folder
plots    the PNG + SVG figures (matplotlib, optional)
summary  summary.md and summary.html
peers    scripts/peers.py's JSON: peers.csv, the peers plot and the ratio table

Checked by tests/report/test_report.sh (fixtures in tests/report/fixtures/).
"""
