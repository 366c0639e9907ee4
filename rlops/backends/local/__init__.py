"""The local backend: trials as processes on this machine (`LocalBackend`, an
`ExperimentBackend`), placed on its CPUs and GPUs (`rlops.backends.packing`), sharing one
Ray head per run (`rayhead`)."""
