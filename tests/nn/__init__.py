"""Tests of minigrad/nn/."""
