"""Tests of minigrad/data/."""
