"""The compiled-core glue of each op, one module per op: the functions that unpack tensors
into the arguments of hepgen._C's entry points (the ops' cpu and cuda backends).

Imported by the op declarations in hepgen/ops/<op>.py; they import nothing from those modules.
"""
