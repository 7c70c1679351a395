"""Learning rules (:mod:`.base`: the protocol and the registry; :mod:`.bptt`: BPTT)."""

from .base import RULES, Rule, StepResult, make_rule, register_rule
from .bptt import BPTT

__all__ = ["BPTT", "RULES", "Rule", "StepResult", "make_rule", "register_rule"]
