"""Every tracked document with its stage and state, from DynamoDB (through the aws_default connection).

python -m include.documents.status [--table document-tracking] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

from include.connections import AWS_CONN_ID


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", default="document-tracking")
    parser.add_argument("--conn-id", default=AWS_CONN_ID)
    parser.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    args = parser.parse_args(argv)

    from include.connections import dynamodb_client
    from include.documents.pipeline import status

    rows = status(dynamodb_client(args.conn_id), args.table)
    if args.json:
        json.dump(rows, sys.stdout, indent=1, sort_keys=True)
        print()
        return 0
    print(f"{'priority':>8}  {'stage':8}  {'state':8}  {'updated':24}  document")
    for row in rows:
        line = f"{row['priority']!s:>8}  {row['stage']:8}  {row['state']:8}  {row['updated_at'] or '':24}  {row['key']}"
        print(line + (f"  ({row['error']})" if row.get("error") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
