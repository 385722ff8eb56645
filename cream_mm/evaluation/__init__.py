"""Evaluation tools: latency (Table 4), ranking quality (Kendall's tau)."""
