"""Synthetic human-robot-collaboration activity data (``retf synth``), see docs/data.md.

``grammar`` plans the actions and the three cue-carrying branches of every assembly cycle,
``body`` turns the plan into a kinect_v2_25 skeleton, ``scene`` builds the workbench, camera
and static background, ``render`` draws RGB and depth, ``generate`` ties them into clips and
a clip store, ``preview`` draws a contact sheet.
"""
