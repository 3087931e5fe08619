"""Built-in PDE problems, written with kanpde's public API exactly as a user would write theirs.

In a source checkout this is the top-level folder ``problems/``; it installs as
``kanpde.problems`` (``from kanpde.problems.poisson import PaperPoisson``), and the configs
select them as ``kanpde.problems.<module>.<Class>`` targets.
"""
