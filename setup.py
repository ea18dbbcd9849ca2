"""Build the optional C accelerators (netrum/_lane.c, netrum/_csvrow.c).

Everything else is in pyproject.toml. The extensions are optional: where no C compiler is found the
install still succeeds and netrum runs its pure-Python path (the tested reference), a little slower.
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("netrum._lane", ["netrum/_lane.c"], optional=True, extra_compile_args=["-O2"]),
        Extension("netrum._csvrow", ["netrum/_csvrow.c"], optional=True, extra_compile_args=["-O2"]),
    ],
)
