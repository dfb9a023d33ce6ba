"""``python -m latcomp`` runs the command line."""

from .cli import main

main()
