"""`growlm study NAME`: an experiment end to end, each from one command, at a chosen scale.

The studies are the entries of study/registry.py (`growlm study --help` lists them with what each answers). A study
is a module or package defining `STUDY = Study(...)`: its scales (study/scales.py's StudyScale, or a subclass with
the study's own facts), its options (a StudyOptions subclass), the check that derives every run's config, and run.

A study folder holds inputs/ (tokenizer, shards, substrate built once and shared by every run), configs/ (the
exact config of every run), runs/ (growth runs), study.json, tables/ (CSV), tables.md, plots/ and the report.
Rerunning a study reuses completed runs and evaluations and resumes interrupted runs; `force` starts over.
"""
