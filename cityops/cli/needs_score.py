"""``cityops needs score``: score every household with the index and the model, and store one
assessment each (docs/needs.md, "Scoring the district"; :mod:`cityops.app.needs_scoring`).
"""

from __future__ import annotations

import time

import click

from cityops.app.needs_scoring import NothingToScore, score_households
from cityops.cli.common import database_url, fail, say, settings_of
from cityops.platform import db


@click.command("score")
@click.option("--high", default=0.7, show_default=True, type=click.FloatRange(0, 1),
              help="Second look: not identified by the index, model probability above this.")
@click.option("--low", default=0.2, show_default=True, type=click.FloatRange(0, 1),
              help="Second look: identified by the index, model probability below this.")
@click.option("--seed", default=0, show_default=True, help="The model's random seed.")
@click.pass_context
def score_command(ctx: click.Context, high: float, low: float, seed: int) -> None:
    """Score every household: its deprivation score c and identification (Alkire-Foster, the
    primary score), the model's probability (learned from past decisions), and a second-look
    flag where they disagree strongly; a new assessment is stored for each household whose
    result changed since its latest one."""
    if low >= high:
        fail(f"--low ({low}) must be below --high ({high})")
    started = time.monotonic()
    with db.connect(database_url(settings_of(ctx))) as conn:
        try:
            run = score_households(conn, high=high, low=low, seed=seed, say=say)
        except NothingToScore as exc:
            fail(str(exc))
    click.echo(f"households scored: {run.households:,} (indicator set {run.version},"
               f" k = {run.k}); new assessments stored: {run.stored:,}"
               f" ({run.households - run.stored:,} unchanged since their latest)")
    click.echo(f"identified: {run.identified:,}; H = {run.H:.4f}, A = {run.A:.4f},"
               f" M0 = {run.M0:.4f}")
    if run.decisions is not None:
        click.echo(f"model: trained on {run.decisions:,} past decisions; second look:"
                   f" {run.index_only:,} identified but unlikely by the model,"
                   f" {run.model_only:,} likely by the model but not identified")
    click.echo(f"done in {time.monotonic() - started:.1f} s")
