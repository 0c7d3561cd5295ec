"""``python -m zoo_tupate`` runs the CLI."""

from zoo_tupate.cli import main

if __name__ == "__main__":
    main()
