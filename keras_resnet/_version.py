"""The package version, in a module of its own so any module can import it at the top
(``keras_resnet/__init__.py`` imports everything else first)."""

__version__ = "0.3.0"
