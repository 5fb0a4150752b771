"""Numerical kernels of the package (private): they trust their inputs.

``arrays``: the one array-or-scalar pair; ``special``: incomplete beta and gamma
functions in log space and the one continued-fraction loop; ``quadrature``:
log-space quadrature; ``roots``: batched safeguarded Newton.
"""
