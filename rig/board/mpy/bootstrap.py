# Power-on sequence of the virtual board. This is MicroPython code: the unix port runs it as
# `micropython -i bootstrap.py`, so that after boot.py and main.py the process falls into the
# REPL, as a real board does.
import os
import sys

# The board's flash is a host directory: remount it as "/" so that mpremote's file operations,
# open() and os.listdir() all see the board's own filesystem and nothing of the host's.
# A Ctrl-C typed during these few lines must not leave the board half-mounted.
while True:
    try:
        try:
            os.umount("/")
        except OSError:
            pass  # already unmounted by an interrupted earlier attempt
        os.mount(os.VfsPosix(os.getenv("RIG_FLASH")), "/")
        os.chdir("/")
        sys.path[:] = ["", ".frozen", "/lib"]
        break
    except KeyboardInterrupt:
        pass


def _run(name):
    try:
        os.stat(name)
    except OSError:
        return
    try:
        execfile(name, {"__name__": "__main__", "__file__": name})
    except BaseException as e:  # a board prints what killed main.py and carries on to the REPL
        try:
            sys.print_exception(e)
        except KeyboardInterrupt:
            # A second Ctrl-C while the first one's traceback prints (the rig's soft reset right
            # after the firmware's goodbye): uncaught here it ended the process, which looked like
            # a crash and a reboot. A real board's REPL takes it and shows its prompt.
            pass


try:
    _run("boot.py")
    if os.getenv("RIG_RUN_MAIN") == "1":
        _run("main.py")
except KeyboardInterrupt:
    pass  # between the two, as above: on to the REPL
del _run
