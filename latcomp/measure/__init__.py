"""Measurement, outside the runtime: what the models cost and how they compare.

``bench`` (``latcomp bench``: rate from real files, −ELBO, importance-sampled NLL, plots),
``text_bench`` (``latcomp bench`` on text models: the paper's Figure 4 on sentences),
``photo_bench`` (``latcomp bench --photo``), the Kodak images (``kodak``), the classical peer
codecs (``peers``), rate–distortion curves, BD-rates and reports (``rd``), image metrics
(``photo_metrics``: PSNR, MS-SSIM, BD-rate) and the plumbing of results files (``results``).
The codecs never import this package.
"""
