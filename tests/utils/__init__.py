# Copyright (c) mmsimmm contributors. All rights reserved.
"""Helpers shared by the test folders (imported as ``utils.<module>``).

tests/conftest.py puts ``tests/`` on ``sys.path`` and loads the modules
that define fixtures as plugins, so every test folder sees them:

* ``tiny_cls``: an mmpretrain config for ``tiny_cls_images``, ``run_tool``.
* ``simmm_runs``: tiny SimMinMax configs and PNG folders (``tiny_images``),
  tool subprocess helpers; ``rel_hooks`` holds the test-only registered
  components its configs import (top-level ``rel_hooks``, also in
  subprocesses).
* ``upstream``: a real SimMinMax checkpoint, the toolkits' own tools,
  ``run_python``.
* ``demo``: the tiny ``run_demo`` session run.
* ``retrieval`` / ``retrieval_roots``: the SfM-120k and Tokyo 24/7 fixtures.
* ``processes``: ``free_port``, ``describe``; ``help_server``,
  ``official_refinenet``, ``zsda_reference``: loaded from their file path.
"""
