"""Training text: named sources and local files (sources.py; streamed readers in readers.py and textstream.py),
cleaning (clean.py), installing (fetch.py), held-out translation pages (heldout.py), NAME[:WEIGHT] source
mixtures (mix.py), token shards (prepare.py, streamed and parallel through work.py, pool.py, split.py and
assemble.py; the format in shards.py), the training loader (loader.py), decontamination (decontaminate.py) and
tokenizer-mining text (corpus.py)."""
