"""Figures of the noise paper paper (to be filled)."""
