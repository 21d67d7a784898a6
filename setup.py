"""Package layout: the engine is `evalsuite/`; benchmark adapters live in the top-level `tasks/`
folder (one folder per benchmark with its data files, SOURCE note and README) and install as the
`evalsuite.tasks` package. Everything else is in pyproject.toml."""
from setuptools import find_packages, setup

packages = find_packages(include=["evalsuite", "evalsuite.*"])
packages += ["evalsuite.tasks"] + [f"evalsuite.tasks.{p}" for p in find_packages(where="tasks")]
setup(packages=packages, package_dir={"evalsuite": "evalsuite", "evalsuite.tasks": "tasks"})
