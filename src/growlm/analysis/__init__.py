"""Analysis of trained models and substrates (t-SNE by layer, substrate neighbours) and self-contained reports."""
