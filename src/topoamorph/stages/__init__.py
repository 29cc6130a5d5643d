"""Stage entry points: one module per ``workflow/rules/*.smk`` file, one function per rule.

Every function takes keyword-only arguments named exactly like its rule's ``input``, ``output`` and
``params`` keys (plus ``threads`` where the rule sets them, and the wildcards of shell rules), and the
workflow's scripts (or, for shell rules, the command line) pass them by name:

- ``stages.generate``: ``melt_quench``, ``relabel``, ``validate_import``   (rules/generate.smk)
- ``stages.homology``: ``homology``                                       (rules/homology.smk)
- ``stages.descriptors``: ``descriptors``, ``structure_features``         (rules/descriptors.smk)
- ``stages.train``: ``split``, ``train_ridge``, ``train_cnn``, ``train_baselines``, ``learning_curve``
  (rules/train.smk)
- ``stages.report``: ``report``                                           (rules/report.smk)
"""
