"""The weekly and monthly reviews' pure parts: computations over DataFrames, controls, plots, HTML.

- `vvops.reviews.weekly`      time windows, incident statistics, pass rates, approvals, action items, markdown
- `vvops.reviews.monthly`     availability vs SLO, error budget, latency p95, credentials, certificates, markdown
- `vvops.reviews.compliance`  the monthly controls with evidence
- `vvops.reviews.plots`       matplotlib (Agg) PNGs
- `vvops.reviews.html`        a standalone HTML report with the PNGs embedded
"""
