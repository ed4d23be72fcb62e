"""Flax linen models: the mel VQ-VAE (`vqvae`, `quantizer`) and the blocks they share (`layers`)."""
