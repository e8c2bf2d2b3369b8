"""growlm: transformers grown layer by layer on a frozen, non-semantic token substrate.

The public API lives in growlm.api and is importable from here: growlm.grow, growlm.load, growlm.evaluate,
growlm.generate, growlm.compose, growlm.export. It imports its machinery lazily, so `import growlm` stays cheap.
"""

__version__ = "0.1.0"

from growlm.api import compose, evaluate, export, generate, grow, load  # noqa: E402

__all__ = ["compose", "evaluate", "export", "generate", "grow", "load"]
