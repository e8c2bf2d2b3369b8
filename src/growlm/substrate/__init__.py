"""The frozen token substrate: a fixed V x d float32 input-embedding matrix plus its manifest.

Kinds: "visual" (Unifont glyph images, visual.py), "binary" (16-bit id codes, binary.py), "random" (seeded
Gaussian rows, gaussian.py). `lift` maps a substrate to another model width (lift.py).
"""

from growlm.substrate.build import KINDS, build_substrate
from growlm.substrate.lift import lift
from growlm.substrate.store import Substrate, load_substrate

__all__ = ["KINDS", "Substrate", "build_substrate", "lift", "load_substrate"]
