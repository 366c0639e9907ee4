"""Storage that outlives a run: object-store run directories (through an S3 server the tests
start) and PersistentVolumeClaims on the Kubernetes backend."""
