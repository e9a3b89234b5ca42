"""Plant profile → tier and deployment pattern, each decision with its reasons."""

from plantops.classify.rules import Classification, Reason, classify_fleet, classify_plant

__all__ = ["Classification", "Reason", "classify_fleet", "classify_plant"]
