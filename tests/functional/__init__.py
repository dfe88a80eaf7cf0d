"""Tests of minigrad/functional/."""
