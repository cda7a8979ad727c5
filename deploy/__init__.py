"""KAI ML platform deploy tool: charts, environments, local control plane, benchmark releases."""
