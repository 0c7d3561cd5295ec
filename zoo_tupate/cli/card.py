"""``zoo-tupate card publish ENTRY|PATH --repo org/name``: publish an embedding card (no weights)."""

from __future__ import annotations

import click

from zoo_tupate.cli.common import console, handle_errors, home_from, print_json
from zoo_tupate.store.index import Index


@click.group("card")
def command() -> None:
    """Embedding cards: task embeddings shared without adapter weights."""


@command.command("publish")
@click.argument("source")
@click.option("--repo", required=True, help="Target Hub repo, org/name (created if missing).")
@click.option("--private", is_flag=True, help="Create the repo private.")
@click.option("--create-pr", is_flag=True, help="Open a pull request instead of committing to main.")
@click.option("--force", is_flag=True, help="Overwrite files in a repo that zoo-tupate did not create.")
@click.option("--task", default=None, help="Catalog task the embedding is for (e.g. glue/rte), shown on the card.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.pass_context
@handle_errors
def publish(ctx: click.Context, source: str, repo: str, private: bool, create_pr: bool, force: bool,
            task: str | None, as_json: bool) -> None:
    """Publish the embedding card of SOURCE (an index entry, a card folder or an adapter folder) to REPO."""
    from zoo_tupate.hub import publish_card

    extra = {"task": task} if task else None
    result = publish_card(source, repo, Index(home_from(ctx)), private=private, create_pr=create_pr,
                          force=force, extra=extra)
    if as_json:
        print_json(result.to_json())
        return
    console.print(f"published the embedding card of [bold]{source}[/bold] to [bold]{result.repo}[/bold] "
                  f"(commit {result.commit[:12]}): {result.pr_url or result.url}")
