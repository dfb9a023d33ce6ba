"""The modality-free runtime: model files ready for coding, and the checked entropy coder.

:mod:`~latcomp.runtime.model` loads a model directory without torch (its identity, its
family's torch-free runtime and latent codec); :mod:`~latcomp.runtime.coding` is what every
codec does with a file: the seed and its dither, claims checked against the payload before
any work, the ANS coder that never decodes from an empty stream, push/pop of lattice
coordinates, the payload bytes and the content check. The container format is
:mod:`latcomp.container`. Nothing here knows a modality: digits (:mod:`latcomp.digits`),
photos (:mod:`latcomp.photo`) and the modalities after them are peers over this core
(:mod:`latcomp.modalities`).
"""
