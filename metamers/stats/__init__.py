"""Statistics: similarity statistics, null distributions, the metamer test and recognizability.

- :mod:`.statistics`: the statistic registry (paired and Gram forms, labels with units).
- :mod:`.activation_store`: Gram matrices of many wide activation vectors in bounded memory.
- :mod:`.pairs`: counting, indexing and drawing pairs of pool images.
- :mod:`.nulls`: null distributions and their thresholds (no file I/O).
- :mod:`.comparisons`: how a statistic is compared with its threshold (a tie passes, as published).
- :mod:`.metamer_test`: the test of each metamer, verdicts and summaries.
- :mod:`.recognizability`: how evaluators classify metamers; the transfer table.

- :mod:`.rdm`: representational distance matrices from Gram matrices (RDM kinds).
- :mod:`.rsa`: RDM comparisons (Pearson, Spearman, Kendall's tau-a, cosine), with vectorized
  permutation and bootstrap forms.
- :mod:`.cka`: linear and debiased linear CKA.
- :mod:`.resampling`: permutations and bootstrap samples of images, p-values, intervals.
- :mod:`.representation`: the representation test's set measures (RSA and CKA) in one registry.
- :mod:`.reduction`: seeded reductions of wide layers.
- :mod:`.ood`: maximum softmax probability and the AUROC separating metamers from references.
"""
