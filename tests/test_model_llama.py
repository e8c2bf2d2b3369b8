"""growlm.model.llama: running blocks a..b by hand is the Hugging Face forward."""

import torch

from growlm.model.llama import embed, run_blocks


def test_blocks_run_in_two_parts_are_the_hf_forward(model):
    ids = torch.randint(0, 65536, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        hf = model(ids, output_hidden_states=True).hidden_states
        llama = model.model
        hidden, positions, rotary = embed(llama, ids)
        assert torch.equal(hidden, hf[0])
        first = run_blocks(llama, hidden, positions, rotary, 0, 1)
        rest = run_blocks(llama, first, positions, rotary, 1, None)
    torch.testing.assert_close(first, hf[1], rtol=0, atol=1e-6)  # same ops; tolerance for kernel choice only
    torch.testing.assert_close(llama.norm(rest), hf[-1], rtol=0, atol=1e-6)
