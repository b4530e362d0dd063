"""Datasets: download and verify, A|B pairs decoded once, synthetic stand-ins."""
