"""Images built on this machine (buildah, mmdebstrap) and the registries they go to."""
