"""``python -m dxgraph`` is the ``dxgraph`` command (handy where the script is not on PATH)."""

from dxgraph.cli import main

main()
