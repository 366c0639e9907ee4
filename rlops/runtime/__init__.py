"""What runs inside the container: RLlib training of one RLExperiment."""
