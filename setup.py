"""Build hook: everything is declared in setup.cfg; this only lets a lite build leave the Keras weights out.

``FACEZOO_INSTALL=lite pip install ".[lite]"`` builds a wheel without the files only the TensorFlow path reads
(``*.keras``, ``*.weights.h5``) and without the cards' plots (``*.png``) — ~70 MB less. The ONNX graphs, cards,
licences and the bundled sample images stay, so ``load``, ``predict``, ``analyze`` and the CLI work on the
exported backends; a Keras-only model (a generator) then says it needs ``facezoo[cpu]``.
"""
import fnmatch
import os

from setuptools import setup
from setuptools.command.build_py import build_py

LITE_LEAVES_OUT = ("*.keras", "*.weights.h5", "*.png")


def _lite() -> bool:
    return os.environ.get("FACEZOO_INSTALL", "").strip().lower() == "lite"


def _left_out(path: str) -> bool:
    """Whether a lite build leaves ``path`` out: only the shipped models' folders lose files."""
    return (os.sep + "exported" + os.sep in path
            and any(fnmatch.fnmatch(os.path.basename(path), p) for p in LITE_LEAVES_OUT))


class BuildPy(build_py):
    def find_data_files(self, package, src_dir):
        files = super().find_data_files(package, src_dir)
        return [f for f in files if not _left_out(f)] if _lite() else files

    def run(self):
        super().run()
        if _lite():  # pip builds in the source tree: a full build's copies may still sit in build/lib
            for root, _dirs, names in os.walk(os.path.join(self.build_lib, "facezoo")):
                for name in names:
                    if _left_out(os.path.join(root, name)):
                        os.remove(os.path.join(root, name))


setup(cmdclass={"build_py": BuildPy})
