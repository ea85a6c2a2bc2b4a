"""Jobs: one function per workflow rule, given a validated config and paths.

- :mod:`.training`: ``train_model`` (a model declared with ``source: train``).
- :mod:`.generate`: ``generate`` (one batch of metamers).
- :mod:`.nulls`: ``null_distribution``, ``null_tables``.
- :mod:`.metamer_test`: ``metamer_test``, ``metamer_test_table``.
- :mod:`.recognizability`: ``recognizability``, ``transfer_table``.
- :mod:`.representation`: ``representation_activations``, ``representation``, ``representation_table``.
- :mod:`.inversion`: ``inversion``, ``inversion_table``.
- :mod:`.relations`: ``layer_depths``, ``transfer_by_relation``.
- :mod:`.figures`: ``grid_images``, ``figure``.
- :mod:`.preflight`: the pre-flight check run before any job starts.
- :mod:`.rules`: the rule -> job table that the workflow's one script calls; :mod:`.common`: logs, devices.
"""
