"""Rules of the playbook's procedures (parameter changes, upgrades, drills) as plain functions."""
