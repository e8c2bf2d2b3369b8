"""`growlm study NAME`: the paper's experiments, each from one command, at a chosen scale.

- depth (depth.py): the growth series, one block at a time to depth 6, every stage evaluated.
- nine-layer (nine_layer.py): constructive vs monolithic vs trainable-embedding variants on shared inputs.
- compose (compose.py): two experts on one substrate and tokenizer, composed by every mode (mean_logits,
  mean_probs, posterior, fixed-share) and scored per language and on mixed-language text.

A study folder holds inputs/ (tokenizer, shards, substrate built once and shared by every run), configs/ (the
exact config of every run), runs/ (growth runs), study.json, tables/ (CSV), tables.md, plots/ and the report.
Rerunning a study reuses completed runs and evaluations and resumes interrupted runs; --force starts over.
"""
