"""``python -m attnscale`` runs the command line."""

from .cli import main

main()
