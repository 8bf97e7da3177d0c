"""Planners for worldjepa: CEM, MPPI, gradient-based, and receding-horizon MPC.

Torch only. A planner sees a world model through a cost function
``cost(actions (B, N, H, A)) -> (B, N)`` and never imports worldjepa.
"""
