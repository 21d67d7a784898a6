"""Package layout: the engine is `evalsuite/`; benchmark adapters live in the top-level `tasks/`
folder (one folder per benchmark with its data files, SOURCE note and README) and install as the
`evalsuite.tasks` package; the static leaderboard site lives in the top-level `leaderboard/` folder
(code, templates, CSS/JS) and installs as `evalsuite.leaderboard`. Everything else is in pyproject.toml."""
from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

packages = find_packages(include=["evalsuite", "evalsuite.*"])
packages += ["evalsuite.tasks"] + [f"evalsuite.tasks.{p}" for p in find_packages(where="tasks")]
packages += ["evalsuite.leaderboard"]

# The leaderboard's templates and static files sit in plain subfolders. pyproject.toml's package-data
# table replaces any package_data given here, so they are added when the build command is set up.
LEADERBOARD_DATA = ["templates/*.jinja", "static/*.css", "static/*.js"]


class BuildPy(build_py):
    def finalize_options(self):
        super().finalize_options()
        data = dict(self.package_data or {})
        data["evalsuite.leaderboard"] = list(data.get("evalsuite.leaderboard", [])) + LEADERBOARD_DATA
        self.package_data = data


setup(packages=packages,
      package_dir={"evalsuite": "evalsuite", "evalsuite.tasks": "tasks", "evalsuite.leaderboard": "leaderboard"},
      cmdclass={"build_py": BuildPy})
