"""The platform's release graph: values loaded and rendered, checked against the charts' schemas, planned
into levels, compared with what is deployed (no-op, diff) and applied with Helm."""
