"""What runs inside the container: RLlib training of one RLExperiment.

`python -m rlops.runtime --spec FILE --run-dir DIR` (or `rlops train`) builds the
AlgorithmConfig from the spec (`algo_config`), trains with `algo.train()` in a loop
(`loop`), writes progress.jsonl and TensorBoard scalars (`progress`), POSTs progress
when asked (`reporter`), keeps checkpoints (`checkpoints`), resumes (`attempt`) and
turns SIGTERM/SIGUSR1 into a checkpoint and a requeue exit code (`signals`). Ray is
imported only when training starts.
"""
