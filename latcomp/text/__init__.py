"""Sentences: the paper's text autoencoder (Appendix A.2, Figure 4) on a dithered lattice latent.

* :mod:`~latcomp.text.corpus` — the sentence corpus (checksum-verified);
* :mod:`~latcomp.text.tokenizer` — lossless tokenization of text as written (tokens, case, gaps, lines);
* :mod:`~latcomp.text.vocabulary` — the word vocabulary, stored as JSON with the model;
* :mod:`~latcomp.text.model` — the GRU sequence autoencoder (torch) with a lattice or Gaussian latent;
* :mod:`~latcomp.text.training` — batching, evaluation and the resumable training loop.
"""
