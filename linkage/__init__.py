"""Record linkage engine and pipeline for Chinese household-registry and insurance rosters."""
