"""Anti-collapse regularisers: SIGReg (LeJEPA) and VICReg (variance/covariance)."""

from worldjepa.losses.sigreg import SIGReg
from worldjepa.losses.vicreg import vicreg_terms

__all__ = ["SIGReg", "vicreg_terms"]
