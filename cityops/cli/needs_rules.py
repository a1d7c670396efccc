"""``cityops needs find``: run the "policy finds people" rules (cityops.needs.rules)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from cityops.cli.common import database_url, fail, settings_of
from cityops.needs.rules import ALL, BY_ID, run_rules
from cityops.platform import db


@click.command("find")
@click.option("--rule", "rule_ids", multiple=True, metavar="ID",
              help="Run only this rule (repeatable); default: all rules.")
@click.pass_context
def find_command(ctx: click.Context, rule_ids: tuple[str, ...]) -> None:
    """Find households that may need help but never applied: one review task per household and
    rule version (docs/needs.md, "Finding people who never applied")."""
    unknown = [r for r in rule_ids if r not in BY_ID]
    if unknown:
        fail(f"unknown rule {', '.join(unknown)}; rules: {', '.join(BY_ID)}")
    rules = [BY_ID[r] for r in dict.fromkeys(rule_ids)] if rule_ids else list(ALL)
    with db.connect(database_url(settings_of(ctx))) as conn:
        summary = run_rules(conn, datetime.now(UTC), rules)
    for c in summary.counts:
        click.echo(f"{c.rule_id} (version {c.version}): {c.title}")
        click.echo(f"  households matched: {c.matched}; tasks created: {c.created};"
                   f" already known: {c.already_known}")
