"""The C part of imgsim: search's int4 pass (gallery/int4.c). Everything else is in pyproject.toml.

optional: where there is no C compiler (a slim container image), the install goes on without it and
search reads the int8 twin instead (gallery.vector_file.int4_kernel).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("gallery._int4", ["gallery/int4.c"], extra_compile_args=["-O3"], optional=True)])
