"""``python -m ssmd``: the ssmd command line."""

from ssmd.cli import main

main()
