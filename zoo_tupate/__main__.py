"""``python -m zoo_tupate``: the same as the ``zoo-tupate`` command."""

from zoo_tupate.cli import main

if __name__ == "__main__":
    main()
