"""Pure rules of linkage: config, standardising, blocking, comparisons, the model, households,
clustering and golden records. No I/O."""
