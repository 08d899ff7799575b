"""One module per ``conv3t`` sub-command; see :mod:`conv3t.cli`."""
