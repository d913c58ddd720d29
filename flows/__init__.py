"""One flow module per cadence or procedure of the playbook; each reads as the playbook reads."""
