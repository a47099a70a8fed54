"""Peer servers that `scripts/bench_peers.py` measures giftcast against (see its docstring)."""
