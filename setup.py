"""The optional C hot path of ``agentlog.track`` (agentlog/_speedups.c).

Everything else is in pyproject.toml. ``optional=True``: where it cannot be
compiled (no compiler), the install goes on and agentlog uses the identical
pure-Python path; ``agentlog doctor`` says which one runs.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("agentlog._speedups", ["agentlog/_speedups.c"], optional=True)])
