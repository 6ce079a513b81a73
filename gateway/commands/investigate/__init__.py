"""`python -m gateway investigate ACTION`: the Investigation service for people who do not write gRPC clients.

search, history, watch, export and head name a case (--case, or $INVESTIGATION_CASE); audit needs an admin's
token. Every action reaches the gateway as `demo` does (--target, $GATEWAY_LISTEN, make run's .var/env; the
token from --token, $GATEWAY_TOKEN, .var/dev-token) and prints tables, or with --json one JSON line per answer
(per lead for watch). A call that fails prints one line naming the code, the gateway and the details, then
each bad field on a line of its own, and exits 1; bad options exit 2.
"""

from __future__ import annotations

from typing import Any

from gateway.commands.investigate import evidence, history, query, watch
from gateway.commands.investigate.common import common_options


def register(sub: Any) -> None:
    """Adds the `investigate` command group and its actions."""
    p = sub.add_parser("investigate", help="search, histories, a live watch of leads, evidence and the audit",
                       description="The Investigation service for people who do not write gRPC clients.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    with_case = common_options(case=True)
    query.add(actions, with_case, common_options(case=False))
    history.add(actions, with_case)
    watch.add(actions, with_case)
    evidence.add(actions, with_case)
