"""Typer command groups, one module each; `deploy.cli` assembles them."""
