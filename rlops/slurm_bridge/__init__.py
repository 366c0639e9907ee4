"""slurm_bridge"""
