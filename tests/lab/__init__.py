"""Tests of minigrad/lab/."""
