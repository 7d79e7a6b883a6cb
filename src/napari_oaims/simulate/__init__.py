"""Simulated users: robot clickers, noise and wrong labels, boxes and scribbles (GUIDE 3.5)."""
