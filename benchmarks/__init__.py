"""Benchmarks of the rig: ratios and percentiles against baselines measured in the same run.

Run ``python -m benchmarks``; see ``benchmarks.runner`` for the module interface.
"""
