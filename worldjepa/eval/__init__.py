"""Evaluation: collapse monitors, linear state probes, and (later) planning runs and what-if tools."""
