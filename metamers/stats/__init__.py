"""Statistics: similarity statistics, null distributions, the metamer test and recognizability.

- :mod:`.statistics`: the statistic registry (paired and Gram forms, labels with units).
- :mod:`.activation_store`: Gram matrices of many wide activation vectors in bounded memory.
- :mod:`.pairs`: counting, indexing and drawing pairs of pool images.
- :mod:`.nulls`: null distributions and their thresholds (no file I/O).
- :mod:`.comparisons`: how a statistic is compared with its threshold (a tie passes, as published).
- :mod:`.metamer_test`: the test of each metamer, verdicts and summaries.
- :mod:`.recognizability`: how evaluators classify metamers; the transfer table.

The representation measures and resampling of the representation test will join these.
"""
