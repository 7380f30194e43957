"""The service layer: the only code that changes task state.

HTML views, JSON views, the CLI and the worker all call these functions.
"""
