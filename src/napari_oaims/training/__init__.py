"""Procedural training data (domain randomisation) and pretraining of the click model."""
