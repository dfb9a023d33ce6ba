"""The torch modules of the model families (training, NLL, bench); the families name them (latcomp.families)."""
