"""Typed configuration: one frozen section type per params section, validated on load.

Import from the submodules (``jiuzhang.config.loader.load_params``, ``jiuzhang.config.root.Params``):
this package imports nothing eagerly, because every area's config module imports
``jiuzhang.config.base_model`` and the root imports every area's config.
"""
