"""Shared pytest set-up: each area keeps its fixtures in tests/fixtures/ and is listed here."""

pytest_plugins = [
    "tests.fixtures.devnet_fixtures",
    "tests.fixtures.store_fixtures",
    "tests.fixtures.config_fixtures",
    "tests.fixtures.prefect_fixtures",
    "tests.fixtures.ops_fixtures",
    "tests.fixtures.tls_fixtures",
    "tests.fixtures.slack_fixtures",
    "tests.fixtures.approval_fixtures",
    "tests.fixtures.safe_fixtures",
    "tests.fixtures.prometheus_fixtures",
    "tests.fixtures.comms_fixtures",
]
