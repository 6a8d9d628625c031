"""Speed and memory benchmarks: each prints its figures and ratios against a reference run in the same process tree."""
