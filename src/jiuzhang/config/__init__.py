"""Typed configuration: one frozen section type per params section (``jiuzhang.config.<area>``, e.g.
``jiuzhang.config.training``), validated on load by ``jiuzhang.config.loader.load_params`` into
``jiuzhang.config.root.Params``.

Every section lives in this one package because every stage validates the whole params file, so every
stage's code depends on all of them: one folder is one DVC dependency (``src/jiuzhang/config`` in each
stage's ``deps``), and a change to any schema reruns what it may change. This package imports nothing
eagerly: each section imports ``jiuzhang.config.base_model`` and the root imports every section.
"""
