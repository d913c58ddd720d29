"""Approvals: pure rules (`policy`), the store-backed service (`service`), Slack request signatures
(`slack_signature`). Prefect-free; the flow side is tasks/approvals.py, the Slack endpoint vvops/slack_app."""

from .policy import RequestView, Tally, Verdict, Vote, tally, validate_decision
from .slack_signature import SignatureError, SlackSignatureVerifier, sign, verify_signature

__all__ = ["RequestView", "SignatureError", "SlackSignatureVerifier", "Tally", "Verdict", "Vote", "sign", "tally",
           "validate_decision", "verify_signature"]
