"""Evaluation: log-likelihood and generation scoring, benchmarks, confidence intervals, the paper's protocol.

tasks.py is the entry point (task registry, evaluate()); harness.py and decoding.py drive the model; one module per
benchmark family; results.py defines the table and the results JSON.
"""
