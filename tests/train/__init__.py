"""Tests of minigrad/train/."""
