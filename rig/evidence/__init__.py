"""What a run leaves behind for a person at 3 a.m.: per-test timelines and the run record."""
