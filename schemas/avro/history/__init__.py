"""Every earlier released version of each schema, kept for compatibility tests.

Name: ``<schema file stem>.v<N>.avsc``. Never edit or delete one: consumers in the field
may still be reading records written with it.
"""
