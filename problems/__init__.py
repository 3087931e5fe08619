"""Built-in PDE problems, written with kanpde's public API exactly as a user would write theirs."""
