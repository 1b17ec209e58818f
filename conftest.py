# The installed rig registers its plugin itself (a pytest11 entry point); this line keeps a
# checkout that is not installed (PYTHONPATH=.) working. Both together load it once.
pytest_plugins = ["rig.plugin"]
