"""Playbook coverage: which flow/task implements each item of the operations playbook.

- `playbook`   parses the playbook markdown into items (heading path + bullet text).
- `registry`   the mapping: one entry per item with its mode (automated / assisted / manual) and code.
- `checklists` the assisted/manual items as per-cadence report checklists with an evidence column.
- `python -m vvops.coverage` prints the coverage matrix (docs/playbook-coverage.md).
"""
