"""The installed lisearch's version, in a module of its own: the package's ``__init__`` re-exports the API, so
modules that need only the version (the CLI, the doctor, the screen's run fingerprint) import it from here."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lisearch")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
