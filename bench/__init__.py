"""Steppe's benchmark suite (issue 5): `python -m bench` runs every scenario and writes bench/results/.

Modules: `procs` (processes, ports, RSS), `loadgen` (wrk, HTTP polling, event bursts), `pingpong` (the
protocol round-trip load generator, run as a child process), `projects` (the step files each scenario
runs), `stats` (rows, medians, ratios), `scenarios/` (one module per scenario), `report` (Markdown, JSON).
"""
