"""Scoring (docs/protocols.md): metrics by protocol name in registry.METRICS, the `score` stage in
score.py, the fallback segmenter and ground-truth rows in segmenter.py."""
