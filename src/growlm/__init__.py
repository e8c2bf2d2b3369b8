"""growlm: transformers grown layer by layer on a frozen, non-semantic token substrate.

The public API lives in growlm.api and is importable from here: growlm.grow, growlm.load, growlm.evaluate,
growlm.evaluate_run, growlm.generate, growlm.stream, growlm.compose, growlm.export, growlm.report,
growlm.run_study, and how a run starts: growlm.New, growlm.Resume, growlm.Branch (grow's `start`). It imports its
machinery lazily, so `import growlm` stays cheap.
"""

__version__ = "0.1.0"

from growlm.api import (  # noqa: E402
    Branch,
    New,
    Resume,
    compose,
    evaluate,
    evaluate_run,
    export,
    generate,
    grow,
    load,
    report,
    run_study,
    stream,
    study_definition,
)

__all__ = [
    "Branch",
    "New",
    "Resume",
    "compose",
    "evaluate",
    "evaluate_run",
    "export",
    "generate",
    "grow",
    "load",
    "report",
    "run_study",
    "stream",
    "study_definition",
]
