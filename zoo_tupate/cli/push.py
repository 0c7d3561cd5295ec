"""``zoo-tupate push PATH --repo org/name``: upload a tuned adapter with its embedding card."""

from __future__ import annotations

from pathlib import Path

import click

from zoo_tupate.cli.common import console, handle_errors, print_json


@click.command("push")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repo", required=True, help="Target Hub repo, org/name (created if missing).")
@click.option("--private", is_flag=True, help="Create the repo private.")
@click.option("--create-pr", is_flag=True, help="Open a pull request instead of committing to main.")
@click.option("--force", is_flag=True, help="Overwrite files in a repo that zoo-tupate did not create.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@handle_errors
def command(path: Path, repo: str, private: bool, create_pr: bool, force: bool, as_json: bool) -> None:
    """Upload the adapter files of PATH (weights, configs, head) and its embedding card to REPO."""
    from zoo_tupate.hub import push

    result = push(path, repo, private=private, create_pr=create_pr, force=force)
    if as_json:
        print_json(result.to_json())
        return
    where = result.pr_url or result.url
    console.print(f"pushed {len(result.files)} files to [bold]{result.repo}[/bold] "
                  f"(commit {result.commit[:12]}{', new repo' if result.created else ''}): {where}")
