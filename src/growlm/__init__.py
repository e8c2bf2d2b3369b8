"""growlm: transformers grown layer by layer on a frozen, non-semantic token substrate."""

__version__ = "0.1.0"
