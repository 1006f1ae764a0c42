"""Progress display of the agents: one tqdm bar (stderr) over the named steps of an agent.

Disabled by ``RunOptions.progress=False`` (``run --quiet``). Long numerical loops inside a step
(network inference over blocks of genes, policy training) show their own bar below it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Steps"]


class Steps:
    """A progress bar over the steps of one agent.

    Parameters
    ----------
    agent
        Name shown before the bar.
    steps
        The steps, in order (their count is the bar's total).
    enabled
        Show the bar.

    Examples
    --------
    >>> with Steps("data", ["reading", "writing"], enabled=False) as step:
    ...     step("reading")
    ...     step("writing")
    """

    def __init__(self, agent: str, steps: Sequence[str], *, enabled: bool = True) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=len(steps), desc=agent, unit="step", leave=False, disable=not enabled,
                         bar_format="{desc}: {n_fmt}/{total_fmt} {postfix} [{elapsed}]")
        self._started = False

    def __call__(self, name: str) -> None:
        """Mark the current step done and show ``name`` as the one running."""
        if self._started:
            self._bar.update(1)
        self._started = True
        self._bar.set_postfix_str(name, refresh=True)

    def close(self) -> None:
        if self._started:
            self._bar.update(1)
        self._bar.close()

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
