"""The standalone ``mcbr`` command (click): models, and later train / eval / embed."""

from __future__ import annotations

import json

import click


@click.group()
@click.version_option(package_name="beets-mcbr")
def main() -> None:
    """beets-mcbr without beets: list, train, evaluate and run models."""


@main.command("models")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def models(as_json: bool) -> None:
    """List the shipped models and their heads."""
    from mcbr_core.models.checkpoint import read_card
    from mcbr_core.models.shipped import shipped_models

    rows = []
    for name, path in shipped_models().items():
        card = read_card(path)
        rows.append({"name": name, "id": card["id"], "heads": {h: len(v) for h, v in card["heads"].items()},
                     "embedding_dim": card["embedding"]["dim"], "path": str(path)})  # fmt: skip
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        heads = ", ".join(f"{h} ({n} labels)" for h, n in r["heads"].items())
        click.echo(f"{r['name']:<16} {r['id']:<18} {heads}; {r['embedding_dim']}-d embedding")
