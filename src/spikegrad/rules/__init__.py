"""Learning rules (:mod:`.base`: the protocol and the registry; :mod:`.bptt`: BPTT;
:mod:`.feedback`: feedback alignment and direct feedback alignment; :mod:`.dcll`: local
errors; :mod:`.rtrl`: exact forward-mode gradients)."""

from .base import RULES, Rule, StepResult, make_rule, register_rule
from .bptt import BPTT
from .dcll import DCLL
from .feedback import DirectFeedbackAlignment, FeedbackAlignment
from .rtrl import RTRL

__all__ = ["BPTT", "DCLL", "RTRL", "DirectFeedbackAlignment", "FeedbackAlignment", "RULES", "Rule", "StepResult", "make_rule", "register_rule"]
