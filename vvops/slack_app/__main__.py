"""`python -m vvops.slack_app --host 127.0.0.1 --port 3000 --environment devnet`"""

import argparse

from .server import serve_slack_interactions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vvops.slack_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--environment", "-e", default="devnet")
    parser.add_argument("--prefect-api-url", default=None, help="default: PREFECT_API_URL / prefect.toml")
    args = parser.parse_args(argv)
    serve_slack_interactions(args.host, args.port, environment=args.environment, prefect_api_url=args.prefect_api_url)


if __name__ == "__main__":
    main()
