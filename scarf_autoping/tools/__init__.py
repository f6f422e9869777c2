"""The author's tools: the command line, the local collector, the reports and ``init``.

Nothing here is imported by ``import scarf_autoping``: these modules run on the author's
machine (or in the demo), never inside the processes that import an adopting package,
so they may use more of the standard library than the runtime does.
"""
