"""The GUI-free, torch-free rules every other package builds on.

Prompts, the image source (channels, planes, normalisation), geometry (boxes, plane and full
coordinates), local windows, the network's input encoding, the edit history, the event schema
and painting accepted objects into a labels array.
"""
