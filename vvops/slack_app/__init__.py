"""The Slack interactivity endpoint: Approve/Reject buttons on approval requests (see server.py)."""

from .server import INTERACTIONS_PATH, create_app, serve_slack_interactions

__all__ = ["INTERACTIONS_PATH", "create_app", "serve_slack_interactions"]
