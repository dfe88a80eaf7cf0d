"""Tests of the scripts of benchmarks/, run on tiny settings."""
