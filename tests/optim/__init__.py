"""Tests of minigrad/optim/."""
