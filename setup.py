"""The package list, which setup.cfg cannot express: the repository's top-level
``kernels/`` folder installs as ``minigrad.kernels`` (a top-level ``kernels`` would
clash with an unrelated package of that name on the public index). Everything else
is in setup.cfg."""
from setuptools import find_packages, setup

KERNELS = ["minigrad." + name for name in find_packages(include=["kernels", "kernels.*"])]

setup(packages=find_packages(include=["minigrad", "minigrad.*"]) + KERNELS,
      package_dir={"minigrad.kernels": "kernels"})
