"""Triton kernels of hepgen's ops, one module per op.

Import these modules only through the ops' backend tables: on a machine without a GPU the
kernels run only under ``TRITON_INTERPRET=1``, which must be set before they are imported.
"""
