"""Peers: other tools doing the same work as a Steppe scenario, measured in the same run (R1's Dramatiq)."""
