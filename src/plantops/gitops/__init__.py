"""Writing rendered trees: deterministic, incremental, atomic."""

from plantops.gitops.tree import Change, TreeSummary, UnitOfWork, write_tree

__all__ = ["Change", "TreeSummary", "UnitOfWork", "write_tree"]
