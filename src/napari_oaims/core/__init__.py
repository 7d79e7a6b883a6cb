"""The GUI-free, torch-free rules every other package builds on.

Prompts, the image source (channels, planes, normalisation), geometry (boxes, plane and full
coordinates, an object's size), local windows, the network's input encoding, the edit history,
the event schema, painting accepted objects into a labels array, overlap (Dice), the clicks on a
mask's errors, the progress and cancel protocol of long calls, and optional dependencies.
"""
