"""`python -m lstm_edge.cli`: the same command as `lstm-edge`."""

from lstm_edge.cli import main

main()
