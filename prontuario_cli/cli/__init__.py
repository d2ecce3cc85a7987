"""Typer apps only: parse arguments, call the core, render the report."""
