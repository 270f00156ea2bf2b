"""Lab machines: a Lab rendered into an instance directory (render.py), the recipe of what
a machine contains (recipe.py, recipe.yaml) and the root file system built from it
(rootfs.py), making a new machine (create.py), the warm pool (pool.py), Vagrant
(vagrant.py), instance directories and their state (instance.py), finding, locking and
tearing machines down (registry.py, signals.py), commands over SSH (ssh.py), the one step
runner (steps.py) and the providers behind a small interface (providers/).
"""
