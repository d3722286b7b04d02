"""Matching leads to providers: a pure engine (engine.py) and its database side (service.py)."""
