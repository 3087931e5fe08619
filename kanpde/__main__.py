"""``python -m kanpde`` runs the ``kanpde`` command."""
from .cli import main

main()
