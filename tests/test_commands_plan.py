"""growlm.commands.plan: the verb's GPU choices are the cost estimate's GPUs."""

from growlm.train.costs import GPUS


def test_cli_gpu_choices_are_the_cost_estimates_gpus():
    """commands/plan.py spells the names out so that the CLI starts without torch; they must stay the same."""
    from growlm.commands.plan import GPU_NAMES

    assert GPU_NAMES == tuple(sorted(GPUS))
