"""Figures of the break even paper (to be filled)."""
