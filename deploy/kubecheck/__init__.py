"""`make k8s-check`: every deploy/k8s overlay rendered, validated against the Kubernetes schemas,
and held to what the services are (docs/kubernetes.md)."""
