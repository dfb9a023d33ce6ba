"""Exact arithmetic: integer-product layers and a table sigmoid that give the same bits on every machine."""
