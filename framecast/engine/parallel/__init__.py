"""Several ranks rendering one request: the rule that splits it (rule.py), the ranks' channel (group.py),
diffusers' context parallelism on a family's denoisers (context.py) and the engine a group runs (ranked.py).

Importing this package loads no torch; rule.py never does.
"""
