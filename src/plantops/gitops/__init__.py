"""Writing rendered trees: deterministic, incremental, atomic."""

from plantops.gitops.tree import Change, RenderMany, TreeSummary, UnitOfWork, write_tree

__all__ = ["Change", "RenderMany", "TreeSummary", "UnitOfWork", "write_tree"]
