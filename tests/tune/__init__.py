"""Tests of minigrad/tune/."""
