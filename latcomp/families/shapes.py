"""Tensor shapes of the layers families are built from, torch-free (the schema checks weights files against them).

Each function mirrors one constructor of :mod:`latcomp.nn.layers` or one latent; the test
``tests/test_families.py`` holds every family's shapes against its torch module's ``state_dict``.
"""

from __future__ import annotations

from latcomp.families import Shapes

#: Prefix of the frozen entropy-model tensors (``model.codec_tensors()``) in a weights file.
CODEC_PREFIX = "codec."


def gated_mlp(prefix: str, sizes: list[int]) -> Shapes:
    """:func:`latcomp.nn.layers.gated_mlp`: gated layers h, g, then a linear layer."""
    shapes: Shapes = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-2], sizes[1:-1], strict=True)):
        for gate in "hg":
            shapes.update({f"{prefix}.{i}.{gate}.weight": (n_out, n_in), f"{prefix}.{i}.{gate}.bias": (n_out,)})
    last = len(sizes) - 2
    shapes.update({f"{prefix}.{last}.weight": (sizes[-1], sizes[-2]), f"{prefix}.{last}.bias": (sizes[-1],)})
    return shapes


def strided_stack(prefix: str, sizes: list[int], transposed: bool) -> Shapes:
    """:func:`latcomp.nn.layers.analysis_transform` / ``synthesis_transform``: 5×5 convolutions with GDN between."""
    shapes: Shapes = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        weight = (n_in, n_out, 5, 5) if transposed else (n_out, n_in, 5, 5)
        shapes.update({f"{prefix}.{2 * i}.weight": weight, f"{prefix}.{2 * i}.bias": (n_out,)})
        if i < len(sizes) - 2:
            shapes.update({f"{prefix}.{2 * i + 1}.beta_root": (n_out,),
                           f"{prefix}.{2 * i + 1}.gamma_root": (n_out, n_out)})
    return shapes


def lattice_latent(lattice: str, latent: int) -> Shapes:
    """The dithered lattice latent (:func:`latcomp.nn.models.lattice_parameters`) and its frozen codec tensors:
    one scale per lattice block, one Laplace scale per coordinate."""
    from latcomp.lattices.product import parse_spec

    blocks = len(parse_spec(lattice, latent))
    return {"log_delta": (blocks,), "log_b": (latent,),
            CODEC_PREFIX + "lattice.delta": (blocks,), CODEC_PREFIX + "prior.b": (latent,)}
