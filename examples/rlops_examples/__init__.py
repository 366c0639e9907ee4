"""Example user code for rlops: custom environments registered through `entryPoint`."""
