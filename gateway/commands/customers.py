"""`python -m gateway customers list|show`: contract customers as tables, with masked numbers only.

A contract customer is registered through Acceptance.RegisterContractCustomer (admin); these commands read what
was registered: the masked credit code and responsible person's document (the plaintext is sealed and never
opened here), the agreement, who registered it and its parcels.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def register(sub: Any) -> None:
    """Adds the `customers` command group."""
    customers = sub.add_parser("customers", help="contract customers: list them, show one (masked numbers only)")
    actions = customers.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="a table of contract customers, newest first")
    listing.add_argument("--name", help="only those whose name contains this")
    listing.set_defaults(func=list_customers)
    show = actions.add_parser("show", help="one customer: every field, masked, and its parcels by state")
    show.add_argument("customer", help="the customer's id, or its name exactly")
    show.set_defaults(func=show_customer)


def list_customers(args: argparse.Namespace) -> int:
    """Prints the customers' table."""
    from gateway.commands.tables import when, with_connection
    from gateway.storage import admin

    rows = with_connection(lambda conn: admin.customers(conn, name=args.name))
    table = Table("id", "name", "credit code", "responsible", "agreement", "registered", "parcels",
                  title="contract customers")
    for r in rows:
        table.add_row(str(r["id"]), escape(r["name"]), r["credit_code_masked"],
                      f"{escape(r['responsible_name'])} {r['responsible_masked']}", escape(r["agreement_no"]),
                      when(r["registered_at"]), str(r["parcels"]))
    console = Console()
    console.print(table)
    console.print(f"{len(rows)} contract customer{'s' if len(rows) != 1 else ''}"
                  + (f" whose name contains {escape(args.name)!r}" if args.name else ""))
    return 0


def show_customer(args: argparse.Namespace) -> int:
    """Prints one customer (each, when several share the name); exit 1 when none matches."""
    from gateway.commands.tables import when, with_connection
    from gateway.storage import admin

    async def read(conn: Any) -> list[tuple[Any, list[Any]]]:
        found = await admin.customer(conn, args.customer.strip())
        return [(row, await admin.customer_parcels(conn, row["id"])) for row in found]

    found = with_connection(read)
    if not found:
        print(f"gateway: no contract customer has the id or name {args.customer!r}", file=sys.stderr)
        return 1
    console = Console()
    for row, parcels in found:
        fields = Table.grid(padding=(0, 2))
        fields.add_column(style="bold")
        fields.add_column()
        for label, value in (
                ("id", str(row["id"])), ("name", row["name"]), ("credit code", row["credit_code_masked"]),
                ("responsible", row["responsible_name"]),
                ("responsible's document", f"{row['responsible_type']} {row['responsible_masked']}"),
                ("phone", "on file (sealed)" if row["has_phone"] else "none"),
                ("region", row["region_code"]), ("address", row["address"]), ("agreement", row["agreement_no"]),
                ("registered", f"{when(row['registered_at'])} by {row['registered_by']}")):
            fields.add_row(label, escape(value))
        console.print(fields)
        table = Table("state", "parcels", "newest acceptance", title=f"parcels of {escape(row['name'])}")
        for p in parcels:
            table.add_row(p["state"], str(p["parcels"]), when(p["newest"]))
        console.print(table)
        console.print(f"{sum(p['parcels'] for p in parcels)} parcels in all")
    return 0
