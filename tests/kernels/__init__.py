"""Tests of kernels/ (reference, cpu, cuda): against the reference, emulated, compiled."""
