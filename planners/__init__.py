"""Planners for worldjepa: CEM, MPPI, gradient-based, and receding-horizon MPC.

Torch only. A planner sees a world model through a cost function
``cost(actions (B, N, H, A)) -> (B, N)`` and never imports worldjepa.
"""

from planners.base import Bounds, CostFn, PlanResult, shift_warm_start
from planners.cem import CEM
from planners.gradient import GradientPlanner
from planners.mpc import MPC, MPCLog
from planners.mppi import MPPI

__all__ = ["Bounds", "CostFn", "PlanResult", "shift_warm_start", "CEM", "MPPI", "GradientPlanner", "MPC", "MPCLog"]
