"""Generators of whole Z(->mu mu)+jets events ("Jet Diffusion versus JetGPT")."""
