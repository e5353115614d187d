"""Figures of the sharpest paper (to be filled)."""
