"""``pip install .`` builds through here (pyproject.toml has the package's description). setuptools'
working folders (build/, dcgan_ms.egg-info) go to a temporary folder instead of the checkout, so that a
checkout the installing account cannot write, a classroom's shared one, installs too."""
import atexit
import shutil
import tempfile

from setuptools import setup

work = tempfile.mkdtemp(prefix="dcgan_ms-build-")
atexit.register(shutil.rmtree, work, ignore_errors=True)  # the wheel is written elsewhere, by pip's request
setup(options={"build": {"build_base": work}, "egg_info": {"egg_base": work}})
