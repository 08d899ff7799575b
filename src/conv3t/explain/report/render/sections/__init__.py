"""The report's sections, one module each; :mod:`conv3t.explain.report.registry` lists them in page order."""
