"""The online check: the in-memory master, checks, and explanations of a pair."""
