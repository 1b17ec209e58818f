pytest_plugins = ["rig.plugin"]
