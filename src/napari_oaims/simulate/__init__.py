"""Simulated users, torch-free.

- :mod:`~napari_oaims.simulate.clicks`: error regions and click placement, and
  :func:`~napari_oaims.simulate.clicks.correction_clicks`, the click generator that pretraining and
  Post-Interaction adaptation share;
- :mod:`~napari_oaims.simulate.robot`: the seeded benchmark robot, realistic noise, wrong labels;
- :mod:`~napari_oaims.simulate.prompts`: box and scribble prompts drawn from a mask;
- :mod:`~napari_oaims.simulate.records`: saving, loading and replaying recorded clicks.
"""
