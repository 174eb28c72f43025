"""The user-facing optimizers: each one a ``chain`` of optjx building blocks.

One module per family: ``sgd`` (SGD with heavy-ball or Nesterov momentum), ``adaptive``
(RMSprop, AdaGrad, AdaDelta), ``adam`` (Adam, AdamW, RAdam, NovoGrad) and
``delta_bar_delta``. Every name is exported from ``optjx`` itself; import it from there.
"""
