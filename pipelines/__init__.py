"""Batch jobs and the `tierwise` command line: the only layer that knows paths, the clock and the console."""
