"""The HTTP side of a node: for now the health and metrics endpoints operators monitor."""
