"""Jobs a data team runs: read inputs, run, add, evaluate."""
