"""Tests of the scripts and notebook of demos/."""
