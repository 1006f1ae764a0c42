"""The agents' step progress bar (scagents.agents.progress.Steps)."""

from scagents.agents.progress import Steps


def test_steps_show_names_on_stderr_and_nothing_when_disabled(capsys):
    with Steps("data", ["reading", "writing"]) as step:
        step("reading x.h5ad")
        step("writing")
    err = capsys.readouterr().err
    assert "data: " in err and "reading x.h5ad" in err and "writing" in err
    with Steps("data", ["reading"], enabled=False) as step:
        step("reading")
    assert capsys.readouterr().err == ""
