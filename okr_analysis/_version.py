"""The package version: one definition, re-exported as ``okr_analysis.__version__``."""

__version__ = "0.1.0"
