"""Figures of the walk paper (to be filled)."""
