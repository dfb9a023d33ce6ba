"""latcomp: lattice-coded neural compression.

Implements "Lattice Representation Learning": an autoencoder whose latent is
quantized with a lattice and a subtractive dither from a shared seed, trained by
dithered SGD (Theorem 1) so that the training rate is the size of real files.
"""

__version__ = "0.1.0"
