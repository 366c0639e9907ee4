"""The Kubernetes test bed: an API server emulator and a KubeRay stand-in.

No kube-apiserver can run here, so `apiserver.py` serves the parts of the
Kubernetes API that rlops, kopf and kubectl use, loading the real CRD YAML
(ours and KubeRay's). `kuberay_standin.py` plays the KubeRay operator for
RayJobs. `fixtures.py` exposes both to pytest, or a real cluster when
`RLOPS_TEST_KUBECONFIG` is set. See docs/testing.md.
"""
