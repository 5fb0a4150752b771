"""Private compiled kernels of attention.py (numba on the CPU, Triton on CUDA); no input checks here."""
