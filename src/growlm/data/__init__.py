"""Training text: named sources and local files (sources.py), cleaning (clean.py), installing (fetch.py),
held-out translation pages (heldout.py), token shards (prepare.py, shards.py), the training loader (loader.py)
and decontamination (decontaminate.py)."""
