"""One flow module per cadence or procedure of the playbook; each reads as the playbook reads."""

from tasks.heartbeat import install as _install_heartbeats

_install_heartbeats()   # heartbeats that do not hold every flow's exit for up to 1 s (see tasks/heartbeat.py)
