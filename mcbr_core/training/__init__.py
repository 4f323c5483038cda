"""Training and evaluation of the papers' models."""
