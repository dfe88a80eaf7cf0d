"""Tests of minigrad/distributed/."""
