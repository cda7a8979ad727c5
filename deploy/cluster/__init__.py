"""The project's local Kubernetes control plane (kwok binary runtime) and its fake nodes."""
