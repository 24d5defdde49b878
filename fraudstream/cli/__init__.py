"""The `fraudstream` command: one module per verb group; nothing imports this package."""

from fraudstream.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
