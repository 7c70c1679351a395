"""Learning rules (:mod:`.base`: the protocol and the registry; :mod:`.bptt`: BPTT;
:mod:`.feedback`: feedback alignment and direct feedback alignment)."""

from .base import RULES, Rule, StepResult, make_rule, register_rule
from .bptt import BPTT
from .feedback import DirectFeedbackAlignment, FeedbackAlignment

__all__ = ["BPTT", "DirectFeedbackAlignment", "FeedbackAlignment", "RULES", "Rule", "StepResult", "make_rule", "register_rule"]
