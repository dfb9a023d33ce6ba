"""Photos of any size, a modality over the runtime core: the photo codec (``codec``, container version 3), the
torch-free transforms of the factorized model (``network``) and the hyperprior family's codec and network
(``hyper_codec``, ``hyper_network``)."""
