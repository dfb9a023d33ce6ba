"""Digits: fixed-size images (28×28 binary MNIST-like masks) through the gated-MLP lattice VAE.

``codec`` (:func:`~latcomp.digits.codec.compress` / ``decompress``, container versions 1 and 2),
``network`` (the torch-free runtime of the ``lattice-vae`` family).
"""
